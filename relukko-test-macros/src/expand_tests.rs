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

// `#[relukko::test]`: `#[test]` and `#[locked]` in one.

fn expand_test(attr: &str, item: &str) -> String {
    test(tokens(attr), tokens(item)).to_string()
}

fn test_err(attr: &str, item: &str) -> (String, String) {
    let e = match try_test(tokens(attr), tokens(item)) {
        Ok(out) => panic!("expected an error, got {out}"),
        Err(e) => e,
    };
    (e.to_string(), e.span().source_text().unwrap_or_default())
}

/// What `#[locked]` emits, with the test attribute on top.
#[test]
fn test_is_the_test_attribute_and_locked() {
    for (attr, item, plain) in [
        (r#""rig""#, "fn t() { body(); }", "fn t() { body(); }"),
        (
            r#"any_of("a", "b"), timeout = "2m", crate = my"#,
            "#[ignore] fn t(lease: my::Lease) -> Result<(), E> { Ok(()) }",
            "#[ignore] fn t(lease: my::Lease) -> Result<(), E> { Ok(()) }",
        ),
        (
            "",
            "#[should_panic(expected = \"x\")] fn t() { panic!(\"x\") }",
            "#[should_panic(expected = \"x\")] fn t() { panic!(\"x\") }",
        ),
    ] {
        let locked = expand(attr, &format!("#[::core::prelude::v1::test] {plain}"));
        assert_eq!(expand_test(attr, item), locked);
        assert!(
            locked.starts_with("# [:: core :: prelude :: v1 :: test]"),
            "{locked}"
        );
    }
}

/// An `async fn` becomes a sync test that runs `#[locked]`'s async body on
/// the library's current-thread runtime.
#[test]
fn test_runs_an_async_fn_through_block_on() {
    let out = expand_test(
        r#""rig""#,
        "async fn t(lease: Lease) -> std::io::Result<()> { Ok(()) }",
    );
    let expected = quote! {
        #[::core::prelude::v1::test]
        fn t() -> std::io::Result<()> {
            ::relukko::__private::block_on(async move {
                match ::relukko::__private::run_async(
                    &::relukko::__private::Spec {
                        names: &["rig"],
                        any_of: false,
                        timeout: ::core::option::Option::None,
                        lease: ::core::option::Option::None,
                        creator: ::core::option::Option::None,
                        test: ::core::concat!(::core::module_path!(), "::", "t"),
                    },
                    move |lease: Lease| async move { Ok(()) }
                ).await {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(failure) => ::relukko::__private::fail(failure),
                }
            })
        }
    };
    assert_eq!(out, expected.to_string());
    let out = expand_test(r#""rig", crate = my"#, "#[should_panic] async fn t() { }");
    assert!(
        out.contains(
            "my :: __private :: block_on (async move { my :: __private :: run_async_should_panic ("
        ),
        "{out}"
    );
}

#[test]
fn test_with_another_test_attribute_is_an_error_at_it() {
    for (item, at) in [
        ("#[test] fn t() {}", "#[test]"),
        (
            "#[ignore] #[core::prelude::v1::test] fn t() {}",
            "#[core::prelude::v1::test]",
        ),
        ("#[tokio::test] async fn t() {}", "#[tokio::test]"),
        (
            "#[tokio::test(flavor = \"multi_thread\")] async fn t() {}",
            "#[tokio::test(flavor = \"multi_thread\")]",
        ),
    ] {
        let (msg, span) = test_err(r#""rig""#, item);
        assert!(
            msg.starts_with(
                "duplicate test attribute: `#[relukko::test]` is already the test attribute"
            ),
            "{msg}"
        );
        assert_eq!(span, at, "{item}");
    }
    let (msg, _) = test_err(r#""rig""#, "#[test] fn t() {}");
    assert!(msg.ends_with("remove this `#[test]`"), "{msg}");
    let (msg, _) = test_err(r#""rig""#, "#[tokio::test] async fn t() {}");
    assert!(
        msg.contains("write `#[relukko::locked(...)]` above `#[tokio::test]`"),
        "{msg}"
    );
    // On the error path the function stays, as no test and without a warning.
    let out = expand_test(r#""rig""#, "#[test] #[ignore] fn t() { body(); }");
    assert!(out.starts_with(":: core :: compile_error !"), "{out}");
    assert!(
        out.ends_with(&tokens("#[allow(dead_code)] fn t() { body(); }").to_string()),
        "{out}"
    );
}

/// The arguments are `#[locked]`'s, with its checks and messages.
#[test]
fn test_takes_the_arguments_of_locked() {
    for (attr, item) in [
        (r#""rig", timout = "10m""#, "fn t() {}"),
        (r#"any_of("a")"#, "fn t() {}"),
        (r#""a", "b""#, "fn t(lease: Lease) {}"),
        (r#""a""#, "fn t(n: u32) {}"),
    ] {
        let (msg, at) = test_err(attr, item);
        let (locked_msg, locked_at) = err(attr, &format!("#[test] {item}"));
        assert_eq!((msg, at), (locked_msg, locked_at), "{attr} {item}");
    }
    let out = expand_test("42", "fn t() { body(); }");
    assert!(
        out.ends_with(&tokens("#[allow(dead_code)] fn t() { body(); }").to_string()),
        "{out}"
    );
    let (msg, at) = test_err(r#""a""#, "struct S;");
    assert!(
        msg.starts_with("`#[relukko::test]` goes on a function"),
        "{msg}"
    );
    assert_eq!(at, "struct");
}

/// A parameterized test is `#[locked]`'s: `#[relukko::test]` would add a
/// `#[test]` to a function with arguments.
#[test]
fn test_refuses_parameterized_tests_and_other_parameters() {
    let (msg, at) = test_err(r#""rig""#, "#[rstest] #[case(1)] fn t(#[case] x: u32) {}");
    assert_eq!(
        msg,
        "`#[relukko::test]` makes a plain test, which takes no arguments; for `#[rstest]`, \
         write `#[relukko::locked(...)]` above `#[rstest]` instead"
    );
    assert_eq!(at, "#[rstest]");
    let (_, at) = test_err(r#""rig""#, "#[test_case::test_case(1)] fn t(x: u32) {}");
    assert_eq!(at, "#[test_case::test_case(1)]");
    // Other attributes do not make a parameter acceptable.
    let (msg, at) = test_err(r#""rig""#, "#[inline] #[my::attr] fn t(n: u32) {}");
    assert!(
        msg.starts_with("a test function takes no arguments"),
        "{msg}"
    );
    assert_eq!(at, "u32");
}
