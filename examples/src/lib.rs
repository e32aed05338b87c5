//! Runnable examples of relukko-test live in `examples/`; this library is empty.
