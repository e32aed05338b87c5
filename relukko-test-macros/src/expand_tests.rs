//! Expansion snapshots (normalized token strings) and the errors that need
//! the function: not a function, bad parameters.

use super::*;

fn tokens(src: &str) -> TokenStream {
    // Test inputs are hand-written, valid token streams.
    src.parse().expect("valid tokens")
}

fn expand(attr: &str, item: &str) -> String {
    locked(tokens(attr), tokens(item)).to_string()
}

/// The message, and the source text of the span it points at.
fn err(attr: &str, item: &str) -> (String, String) {
    let e = match try_locked(tokens(attr), tokens(item)) {
        Ok(out) => panic!("expected an error, got {out}"),
        Err(e) => e,
    };
    (e.to_string(), e.span().source_text().unwrap_or_default())
}

#[test]
fn sync_without_name() {
    let expected = quote! {
        #[test]
        fn t() {
            ::relukko::__private::run_sync(
                &::relukko::__private::Spec {
                    names: &[],
                    any_of: false,
                    timeout: ::core::option::Option::None,
                    lease: ::core::option::Option::None,
                    creator: ::core::option::Option::None,
                    test: ::core::concat!(::core::module_path!(), "::", "t"),
                },
                move |_: ::relukko::__private::Lease| { assert!(true); }
            )
        }
    };
    assert_eq!(
        expand("", "#[test] fn t() { assert!(true); }"),
        expected.to_string()
    );
}

#[test]
fn sync_result_with_lease_and_options() {
    let out = expand(
        r#"any_of("a", "b"), timeout = "10m", lease = "90s", creator = "me", crate = my::rel"#,
        "#[test] #[ignore] pub(crate) fn r#try(mut lease: relukko::Lease) -> Result<(), E> { x()?; Ok(()) }",
    );
    let expected = quote! {
        #[test]
        #[ignore]
        pub(crate) fn r#try() -> Result<(), E> {
            my::rel::__private::run_sync(
                &my::rel::__private::Spec {
                    names: &["a", "b"],
                    any_of: true,
                    timeout: ::core::option::Option::Some(::core::time::Duration::from_millis(600000u64)),
                    lease: ::core::option::Option::Some(::core::time::Duration::from_millis(90000u64)),
                    creator: ::core::option::Option::Some("me"),
                    test: ::core::concat!(::core::module_path!(), "::", "try"),
                },
                move |mut lease: relukko::Lease| -> Result<(), E> { x()?; Ok(()) }
            )
        }
    };
    assert_eq!(out, expected.to_string());
}

/// A `#[should_panic]` test gets the entry points that fail it without a
/// panic, whatever form the attribute has.
#[test]
fn should_panic_tests_use_their_own_entry_points() {
    for attr in [
        "#[should_panic]",
        r#"#[should_panic(expected = "boom")]"#,
        "#[core::prelude::v1::should_panic]",
    ] {
        let out = expand(r#""rig""#, &format!("#[test] {attr} fn t() {{ body(); }}"));
        assert!(
            out.contains(":: relukko :: __private :: run_sync_should_panic ("),
            "{out}"
        );
        let out = expand(
            r#""rig""#,
            &format!("{attr} #[tokio::test] async fn t() {{ body(); }}"),
        );
        assert!(
            out.contains(":: relukko :: __private :: run_async_should_panic ("),
            "{out}"
        );
    }
    let out = expand(r#""rig""#, "#[test] fn t() { body(); }");
    assert!(!out.contains("should_panic"), "{out}");
}

#[test]
fn async_keeps_tokio_test_and_awaits() {
    let out = expand(
        r#""rig""#,
        "#[tokio::test] async fn t(#[allow(unused)] lease: Lease) -> std::io::Result<()> { Ok(()) }",
    );
    let expected = quote! {
        #[tokio::test]
        async fn t() -> std::io::Result<()> {
            match ::relukko::__private::run_async(
                &::relukko::__private::Spec {
                    names: &["rig"],
                    any_of: false,
                    timeout: ::core::option::Option::None,
                    lease: ::core::option::Option::None,
                    creator: ::core::option::Option::None,
                    test: ::core::concat!(::core::module_path!(), "::", "t"),
                },
                move |#[allow(unused)] lease: Lease| async move { Ok(()) }
            ).await {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(failure) => ::relukko::__private::fail(failure),
            }
        }
    };
    assert_eq!(out, expected.to_string());
}

#[test]
fn closure_return_only_where_spellable() {
    let arrow = |item: &str| {
        let out = expand(r#""a""#, item);
        out.contains(":: Lease | ->")
    };
    assert!(arrow("fn t() -> Result<(), String> { Ok(()) }"));
    assert!(arrow("fn t() -> u32 { 1 }"));
    assert!(!arrow("fn t() { }"));
    assert!(!arrow("fn t() -> () { }"));
    assert!(!arrow("fn t() -> impl std::fmt::Debug { 1 }"));
    assert!(!arrow(
        "fn t() -> Box<dyn std::error::Error + 'static> { todo!() }"
    ));
    assert!(!arrow("fn t() -> &'static str { \"\" }"));
    assert!(!arrow("fn t() -> ! { loop {} }"));
}

#[test]
fn other_parameters_pass_through() {
    // rstest below `#[locked]`: `#[case]` parameters and fixtures stay.
    let out = expand(
        r#""a""#,
        "#[rstest] #[case(1)] fn t(#[case] x: u32, fx: Fx, lease: Lease) { }",
    );
    assert!(
        out.starts_with("# [rstest] # [case (1)] fn t (# [case] x : u32 , fx : Fx)"),
        "{out}"
    );
    assert!(out.contains("move | lease : Lease |"), "{out}");
    // A helper function without a test attribute may take arguments.
    let out = expand(r#""a""#, "fn helper(x: u32) -> u32 { x }");
    assert!(out.starts_with("fn helper (x : u32) -> u32"), "{out}");
    // A method: `self` is captured by the move closure.
    let out = expand(r#""a""#, "fn m(&self) { }");
    assert!(out.starts_with("fn m (& self)"), "{out}");
}

#[test]
fn errors_keep_the_item_unchanged() {
    let item = "#[inline] fn t(lease: Lease) { body(); }";
    let out = expand("42", item);
    assert!(out.starts_with(":: core :: compile_error !"), "{out}");
    assert!(out.ends_with(&tokens(item).to_string()), "{out}");
    // ... except for its test attributes: the harness would add its own error
    // about the same parameters.
    let out = expand(
        "42",
        "#[tokio::test] #[should_panic] #[ignore] #[inline] async fn t(lease: Lease) { body(); }",
    );
    assert!(
        out.ends_with(
            &tokens("#[allow(dead_code)] #[inline] async fn t(lease: Lease) { body(); }")
                .to_string()
        ),
        "{out}"
    );
    // Attribute and item errors are both reported.
    let out = expand("42", "struct S;");
    assert_eq!(out.matches("compile_error").count(), 2, "{out}");
    assert!(out.ends_with("struct S ;"), "{out}");
}

#[test]
fn not_a_function() {
    for (item, what, token) in [
        ("struct S { x: u32 }", "a struct", "struct"),
        ("pub const C: u32 = 1;", "a const", "const"),
        ("enum E { A }", "an enum", "enum"),
        ("static S: u32 = 1;", "a static", "static"),
        ("mod m {}", "a module", "mod"),
        ("impl S {}", "an impl block (put it on each method)", "impl"),
        (
            "const fn f() {}",
            "a `const fn` (it cannot wait for a lock)",
            "const",
        ),
    ] {
        let (msg, at) = err(r#""a""#, item);
        assert_eq!(
            msg,
            format!(
                "`#[locked]` goes on a function (a test `fn`, sync or async), not on {what}; \
                 move it onto the test function"
            )
        );
        assert_eq!(at, token, "{item}");
    }
}

#[test]
fn lease_parameter_errors() {
    let (msg, at) = err(r#""a""#, "fn t(a: Lease, b: relukko::Lease) {}");
    assert!(
        msg.starts_with("only one `Lease` parameter is allowed"),
        "{msg}"
    );
    assert_eq!(at, "b: relukko::Lease");
    let (msg, at) = err(r#""a", "b""#, "fn t(lease: Lease) {}");
    assert!(
        msg.starts_with("a `Lease` parameter needs exactly one resource"),
        "{msg}"
    );
    assert!(msg.contains("`#[locked(any_of(\"a\", \"b\"))]`"), "{msg}");
    assert_eq!(at, "lease: Lease");
    let (msg, at) = err(r#""a""#, "fn t(lease: &relukko::Lease) {}");
    assert_eq!(
        msg,
        "take the `Lease` by value: write `lease: relukko::Lease`"
    );
    assert_eq!(at, "&relukko::Lease");
    let (msg, at) = err(r#""a""#, "#[test] #[ignore] fn t(n: u32) {}");
    assert!(
        msg.starts_with("a test function takes no arguments"),
        "{msg}"
    );
    assert!(msg.contains("remove `n: u32`"), "{msg}");
    assert_eq!(at, "u32");
    let (msg, _) = err(r#""a""#, "#[::core::prelude::v1::test] fn t(n: u32) {}");
    assert!(
        msg.starts_with("a test function takes no arguments"),
        "{msg}"
    );
    // Lease-like names that are not `Lease` by value are other parameters.
    let (msg, _) = err("", "#[tokio::test] async fn t(l: Lease<u8>) {}");
    assert!(
        msg.starts_with("a test function takes no arguments"),
        "{msg}"
    );
}

#[test]
fn lease_parameter_allowed_forms() {
    for (attr, item) in [
        ("", "fn t(lease: Lease) {}"),
        (r#""a""#, "fn t(_: ::relukko::Lease) {}"),
        (r#"any_of("a", "b")"#, "#[test] fn t(lease: (Lease)) {}"),
        (r#""a", crate = my"#, "fn t(lease: my::Lease) {}"),
    ] {
        let out = expand(attr, item);
        assert!(
            out.starts_with("fn t ()") || out.starts_with("# [test] fn t ()"),
            "{out}"
        );
    }
}
