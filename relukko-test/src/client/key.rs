//! The API key header the client sends (`X-API-Key`).

/// The header's name.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";
