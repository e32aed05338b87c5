//! Durations written in the attribute (`timeout = "10m"`), parsed at compile
//! time so a typo is a compile error, not a test failure at run time.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::quote;
use syn::LitStr;

/// Examples shown in every duration error message.
pub(crate) const EXAMPLES: &str =
    "like \"30s\", \"10m\" or \"1h 30m\" (a bare number means seconds)";

/// Parses `lit` as a duration: a bare integer (seconds) or anything
/// `humantime` reads ("90s", "10m", "1h 30m", "500ms"). Zero is rejected:
/// neither a zero wait nor a zero lease means anything useful.
///
/// `option` names the option in messages (`timeout`, `lease`).
pub(crate) fn parse(lit: &LitStr, option: &str) -> syn::Result<Duration> {
    let text = lit.value();
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{option}` is empty; write a duration, {EXAMPLES}"),
        ));
    }
    let parsed = if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        // humantime wants a unit; a bare number is seconds, like `sleep 90`.
        trimmed
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string())
    } else {
        humantime::parse_duration(trimmed).map_err(|e| reason(trimmed, &e))
    };
    let duration = parsed.map_err(|reason| {
        syn::Error::new(
            lit.span(),
            format!("`{option} = \"{text}\"` is not a duration ({reason}); write one {EXAMPLES}"),
        )
    })?;
    if duration.is_zero() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{option}` must be longer than zero; write a duration {EXAMPLES}"),
        ));
    }
    Ok(duration)
}

/// humantime's error in words that point into the text ("expected number
/// at 0" is hard to read).
fn reason(text: &str, err: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    let rest = |at: usize| text.get(at..).unwrap_or(text);
    match err {
        E::NumberExpected(at) => format!("expected a number at `{}`", rest(*at)),
        E::InvalidCharacter(at) => format!("unexpected character at `{}`", rest(*at)),
        E::UnknownUnit { unit, .. } => {
            format!("unknown unit `{unit}`; use ms, s, m, h, d or a word like `minutes`")
        }
        E::NumberOverflow => "the number is too large".to_owned(),
        E::Empty => "it is empty".to_owned(),
    }
}

/// The expression for `duration` in the generated code: `from_millis` when
/// it is a whole number of milliseconds (nearly always), else exact.
pub(crate) fn to_tokens(duration: Duration) -> TokenStream {
    let millis = u64::try_from(duration.as_millis());
    match millis {
        Ok(millis) if duration.subsec_nanos().is_multiple_of(1_000_000) => {
            quote!(::core::time::Duration::from_millis(#millis))
        }
        _ => {
            let secs = duration.as_secs();
            let nanos = duration.subsec_nanos();
            quote!(::core::time::Duration::new(#secs, #nanos))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn lit(s: &str) -> LitStr {
        LitStr::new(s, Span::call_site())
    }

    #[test]
    fn reads_humantime_and_bare_seconds() {
        assert_eq!(
            parse(&lit("90"), "timeout").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse(&lit(" 10m "), "timeout").unwrap(),
            Duration::from_secs(600)
        );
        assert_eq!(
            parse(&lit("1h 30m"), "timeout").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse(&lit("250ms"), "lease").unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn rejects_words_empty_and_zero() {
        let err = parse(&lit("ten minutes"), "timeout")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "`timeout = \"ten minutes\"` is not a duration (expected a number at `ten minutes`)"
            ),
            "{err}"
        );
        let err = parse(&lit("10 minuts"), "timeout").unwrap_err().to_string();
        assert!(
            err.contains("(unknown unit `minuts`; use ms, s, m, h, d or a word like `minutes`)"),
            "{err}"
        );
        let err = parse(&lit("10m!"), "timeout").unwrap_err().to_string();
        assert!(err.contains("(unexpected character at `!`)"), "{err}");
        assert!(err.contains("\"1h 30m\""), "{err}");
        let err = parse(&lit(""), "lease").unwrap_err().to_string();
        assert!(err.starts_with("`lease` is empty"), "{err}");
        for zero in ["0", "0s", "0m 0s"] {
            let err = parse(&lit(zero), "timeout").unwrap_err().to_string();
            assert!(
                err.starts_with("`timeout` must be longer than zero"),
                "{zero}: {err}"
            );
        }
        let err = parse(&lit("99999999999999999999999"), "timeout")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a duration"), "{err}");
    }

    #[test]
    fn emits_millis_or_exact() {
        let ms = to_tokens(Duration::from_secs(90)).to_string();
        assert_eq!(
            ms,
            quote!(::core::time::Duration::from_millis(90000u64)).to_string()
        );
        let exact = to_tokens(Duration::new(1, 500)).to_string();
        assert_eq!(
            exact,
            quote!(::core::time::Duration::new(1u64, 500u32)).to_string()
        );
    }
}
