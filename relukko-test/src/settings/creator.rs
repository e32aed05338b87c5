//! Who is locking: the creator text recorded with a lock, so whoever waits can
//! see who holds it (user, host, test, process and CI job).

use std::sync::OnceLock;

/// The creator text for a lock taken by `test` (or by a helper when `None`):
/// `"user@host test=<module::fn> pid=N"`, plus the CI job when the
/// environment reveals one.
pub(crate) fn for_test(test: Option<&str>) -> String {
    let mut text = format!("{}@{}", user(), host());
    if let Some(test) = test {
        text.push_str(" test=");
        text.push_str(test);
    }
    text.push_str(&format!(" pid={}", std::process::id()));
    if let Some(job) = ci_job(|n| std::env::var(n).ok().filter(|v| !v.is_empty())) {
        text.push(' ');
        text.push_str(&job);
    }
    text
}

/// The creator text for a lock taken by a command (`relukko run`):
/// `"user@host <what> pid=N"`, plus the CI job when the environment reveals one.
pub fn for_command(what: &str) -> String {
    let mut text = format!("{}@{} {what} pid={}", user(), host(), std::process::id());
    if let Some(job) = ci_job(|n| std::env::var(n).ok().filter(|v| !v.is_empty())) {
        text.push(' ');
        text.push_str(&job);
    }
    text
}

/// The user name, from the usual variables; else the account's name in the
/// user database (root in a container often has no `USER`, yet is `root`
/// there); else the user id.
fn user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        let uid = user_id();
        user_from(
            |n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()),
            uid.and_then(account_name),
            uid,
        )
    })
}

/// `USER`, `USERNAME`, `LOGNAME`, else the account's name, else `uid<N>`,
/// else `unknown`.
fn user_from(
    var: impl Fn(&str) -> Option<String>,
    account: Option<String>,
    uid: Option<u32>,
) -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|n| var(n))
        .map(|v| v.trim().to_owned())
        .or(account)
        .or_else(|| uid.map(|u| format!("uid{u}")))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// This process's effective user id.
#[cfg(unix)]
fn user_id() -> Option<u32> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    Some(unsafe { libc::geteuid() })
}

#[cfg(not(unix))]
fn user_id() -> Option<u32> {
    None
}

/// The name of account `uid` in the user database (`/etc/passwd`, or
/// whatever NSS serves), if it has one.
#[cfg(unix)]
fn account_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pwd` and `buf` are valid for writes of their sizes; on
        // success `found` points at `pwd`, whose strings point into `buf`.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name is a NUL-terminated string in `buf`, alive here.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        let name = name.to_string_lossy().trim().to_owned();
        return (!name.is_empty()).then_some(name);
    }
}

#[cfg(not(unix))]
fn account_name(_uid: u32) -> Option<String> {
    None
}

/// The host name.
pub(crate) fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let from_os = system_host_name();
        from_os
            .or_else(|| {
                ["HOSTNAME", "COMPUTERNAME"]
                    .iter()
                    .find_map(|n| std::env::var(n).ok())
            })
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

#[cfg(unix)]
fn system_host_name() -> Option<String> {
    unsafe extern "C" {
        fn gethostname(name: *mut std::ffi::c_char, len: usize) -> std::ffi::c_int;
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length; gethostname
    // writes at most `len` bytes.
    let rc = unsafe { gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(not(unix))]
fn system_host_name() -> Option<String> {
    None
}

/// The CI job, when the environment of a known CI system reveals it.
pub(crate) fn ci_job(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var("GITHUB_ACTIONS").is_some() {
        let run = match (
            var("GITHUB_SERVER_URL"),
            var("GITHUB_REPOSITORY"),
            var("GITHUB_RUN_ID"),
        ) {
            (Some(server), Some(repo), Some(id)) => format!("{server}/{repo}/actions/runs/{id}"),
            (_, _, Some(id)) => format!("run {id}"),
            _ => "run ?".to_owned(),
        };
        let job = var("GITHUB_JOB")
            .map(|j| format!(" job={j}"))
            .unwrap_or_default();
        return Some(format!("ci=github {run}{job}"));
    }
    if var("GITLAB_CI").is_some() {
        return Some(match (var("CI_JOB_URL"), var("CI_JOB_ID")) {
            (Some(url), _) => format!("ci=gitlab {url}"),
            (None, Some(id)) => format!("ci=gitlab job {id}"),
            (None, None) => "ci=gitlab".to_owned(),
        });
    }
    if let Some(url) = var("BUILDKITE_BUILD_URL") {
        return Some(format!("ci=buildkite {url}"));
    }
    if let Some(url) = var("CIRCLE_BUILD_URL") {
        return Some(format!("ci=circleci {url}"));
    }
    if var("TF_BUILD").is_some() {
        let id = var("BUILD_BUILDID").unwrap_or_else(|| "?".to_owned());
        return Some(format!("ci=azure build {id}"));
    }
    if let Some(url) = var("BUILD_URL") {
        // Jenkins, and others that follow its convention.
        return Some(format!("ci=jenkins {url}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn ci_jobs_are_recognised() {
        assert_eq!(ci_job(with(&[])), None);
        assert_eq!(
            ci_job(with(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("GITHUB_REPOSITORY", "o/r"),
                ("GITHUB_RUN_ID", "42"),
                ("GITHUB_JOB", "test"),
            ])),
            Some("ci=github https://github.com/o/r/actions/runs/42 job=test".to_owned())
        );
        assert_eq!(
            ci_job(with(&[("GITLAB_CI", "true"), ("CI_JOB_ID", "7")])),
            Some("ci=gitlab job 7".to_owned())
        );
        assert_eq!(
            ci_job(with(&[("BUILD_URL", "https://jenkins/job/1/")])),
            Some("ci=jenkins https://jenkins/job/1/".to_owned())
        );
    }

    #[test]
    fn the_user_falls_back_to_logname_then_the_account_then_the_uid() {
        let root = || Some("root".to_owned());
        assert_eq!(
            user_from(with(&[("USER", "alice")]), root(), Some(0)),
            "alice"
        );
        assert_eq!(
            user_from(with(&[("LOGNAME", "bob")]), root(), Some(0)),
            "bob"
        );
        assert_eq!(user_from(with(&[]), root(), Some(0)), "root");
        assert_eq!(user_from(with(&[]), None, Some(1000)), "uid1000");
        assert_eq!(user_from(with(&[]), None, None), "unknown");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_uid_is_found_without_the_environment() {
        assert!(user_id().is_some());
    }

    /// Every Unix has a root account named `root` in its user database; an
    /// id nobody has has no name.
    #[cfg(unix)]
    #[test]
    fn the_account_name_comes_from_the_user_database() {
        assert_eq!(account_name(0).as_deref(), Some("root"));
        assert_eq!(account_name(4_000_000_123), None);
    }

    /// With `USER`, `USERNAME` and `LOGNAME` unset, the creator names the
    /// account, not its id (`root@vm`, not `uid0@vm`): checked in a child
    /// process, since the derived user is read once per process.
    #[cfg(unix)]
    #[test]
    fn without_user_variables_the_creator_names_the_account() {
        const CHILD: &str = "CREATOR_TEST_CHILD_OF_RELUKKO";
        if std::env::var_os(CHILD).is_some() {
            println!("creator=[{}]", for_test(None));
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "settings::creator::tests::without_user_variables_the_creator_names_the_account",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env_remove("USER")
            .env_remove("USERNAME")
            .env_remove("LOGNAME")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let uid = user_id().unwrap();
        let expected = account_name(uid).unwrap_or_else(|| format!("uid{uid}"));
        assert!(
            stdout.contains(&format!("creator=[{expected}@")),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if account_name(uid).is_some() {
            assert!(!stdout.contains(&format!("creator=[uid{uid}@")), "{stdout}");
        }
    }

    #[test]
    fn creator_names_test_and_pid() {
        let c = for_test(Some("a::b"));
        assert!(c.contains('@'), "{c}");
        assert!(c.contains(" test=a::b "), "{c}");
        assert!(c.contains(&format!("pid={}", std::process::id())), "{c}");
    }
}
