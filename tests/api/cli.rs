//! The command line itself: operator commands refuse a data directory nobody provisioned (instead of provisioning a
//! stray token, CA and database there), `parafa init` provisions one, and every command and flag has help text.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

/// `parafa <args>` with `PARAFA_DATA_DIR` at `data_dir` and nothing else from a server.
fn parafa_in(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(common::parafa_bin())
        .args(args)
        .env_remove("SOFTHSM2_CONF")
        .env_remove("PARAFA_CONFIG")
        .env_remove("PARAFA_DATABASE_URL")
        .env("PARAFA_DATA_DIR", data_dir)
        .env("PARAFA_LOG", "error")
        .output()
        .expect("run parafa")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_admin_command_on_a_missing_data_directory_refuses_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    for args in [
        &["admin", "audit", "verify"][..],
        &["hsm", "list"],
        &["admin", "cert", "root"],
    ] {
        let out = parafa_in(&data_dir, args);
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "parafa {args:?} succeeded: {}{err}",
            text(&out.stdout)
        );
        assert!(
            err.contains(&data_dir.display().to_string()) && err.contains("PARAFA_DATA_DIR"),
            "parafa {args:?} must name the directory it looked in and PARAFA_DATA_DIR: {err}"
        );
        assert!(err.contains("parafa init"), "{err}");
        assert!(!data_dir.exists(), "parafa {args:?} created {}", data_dir.display());
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing created beside it"
    );
}

#[test]
fn an_admin_command_on_an_empty_data_directory_refuses_and_provisions_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = parafa_in(tmp.path(), &["admin", "audit", "verify"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&tmp.path().display().to_string()) && err.contains("PARAFA_DATA_DIR"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "no database, token or config may appear: {left:?}");
}

#[test]
fn init_provisions_a_data_directory_that_admin_commands_then_use() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let out = parafa_in(&data_dir, &["init"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "parafa init failed: {stdout}{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&data_dir.display().to_string()),
        "init says where: {stdout}"
    );
    assert!(data_dir.join("parafa.db").is_file(), "the database");
    assert!(data_dir.join("softhsm2.conf").is_file(), "the token's config");
    let tokens = std::fs::read_dir(data_dir.join("tokens")).expect("tokens/").count();
    assert_eq!(tokens, 1, "one SoftHSM2 token");
    // Nothing serves, yet the operator commands work on what init made.
    let out = parafa_in(&data_dir, &["admin", "audit", "verify"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("intact: 4 rows"), "{}", text(&out.stdout));
    let out = parafa_in(&data_dir, &["admin", "cert", "root"]);
    assert!(
        text(&out.stdout).starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        text(&out.stderr)
    );
    // A second init reuses what is there.
    let out = parafa_in(&data_dir, &["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = parafa_in(&data_dir, &["admin", "audit", "verify"]);
    assert!(text(&out.stdout).contains("intact: 4 rows"), "{}", text(&out.stdout));
}

/// `parafa <path> --help`.
fn help(path: &[String]) -> String {
    let out = Command::new(common::parafa_bin())
        .args(path)
        .arg("--help")
        .output()
        .expect("run parafa");
    assert!(out.status.success(), "parafa {path:?} --help: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The entries of a help section (`Commands:`, `Arguments:`, `Options:`): (name, description).
fn section(help: &str, title: &str) -> Vec<(String, String)> {
    let mut lines = help.lines().skip_while(|l| *l != title).skip(1);
    let mut entries = Vec::new();
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
        // "  NAME  description": the name and the description are two or more spaces apart.
        let line = line.trim_start();
        let (name, description) = match line.find("  ") {
            Some(i) => (&line[..i], line[i..].trim()),
            None => (line, ""),
        };
        entries.push((name.to_owned(), description.to_owned()));
    }
    entries
}

#[test]
fn every_command_and_flag_has_help_text() {
    let mut todo = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let text = help(&path);
        seen += 1;
        let about = text.lines().next().unwrap_or_default();
        assert!(
            !about.trim().is_empty() && !about.starts_with("Usage:"),
            "parafa {path:?} has no about line:\n{text}"
        );
        for (name, description) in section(&text, "Commands:") {
            if name == "help" {
                continue;
            }
            assert!(
                !description.is_empty(),
                "parafa {path:?} {name} has no description:\n{text}"
            );
            let mut sub = path.clone();
            sub.push(name);
            todo.push(sub);
        }
        for title in ["Arguments:", "Options:"] {
            for (name, description) in section(&text, title) {
                assert!(
                    !description.is_empty() && !description.starts_with('['),
                    "parafa {path:?}: {name} has no help text:\n{text}"
                );
            }
        }
    }
    assert!(seen > 30, "only {seen} commands walked");

    let holder = help(&["admin".into(), "holder".into(), "create".into()]);
    let key = holder.lines().find(|l| l.contains("--key")).expect("--key in the help");
    for value in ["rsa2048", "rsa3072", "p256", "p384"] {
        assert!(key.contains(value), "--key does not list {value}: {key}");
    }
    assert!(key.contains("possible values"), "{key}");
}

#[test]
fn an_unknown_key_type_is_refused_with_the_known_ones() {
    let out = Command::new(common::parafa_bin())
        .args([
            "admin",
            "holder",
            "create",
            "--email",
            "a@example.ro",
            "--name",
            "A B",
            "--phone",
            "+40700000000",
        ])
        .args(["--password", "x", "--key", "ed25519"])
        .output()
        .expect("run parafa");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("ed25519") && err.contains("p384"), "{err}");
}

#[test]
fn on_postgres_an_admin_command_needs_the_provisioned_token_and_init_provides_it() {
    let Some(pg) = common::FreshPostgres::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let run = |args: &[&str]| {
        Command::new(common::parafa_bin())
            .args(args)
            .env_remove("SOFTHSM2_CONF")
            .env_remove("PARAFA_CONFIG")
            .env("PARAFA_DATA_DIR", &data_dir)
            .env("PARAFA_DATABASE_URL", &pg.url)
            .env("PARAFA_LOG", "error")
            .output()
            .expect("run parafa")
    };
    // An existing but empty directory: no database file is expected there, but no token either.
    std::fs::create_dir(&data_dir).unwrap();
    let out = run(&["admin", "audit", "verify"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{}{err}", text(&out.stdout));
    assert!(
        err.contains(&data_dir.display().to_string()) && err.contains("token"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&data_dir).unwrap().count(),
        0,
        "nothing created in it"
    );

    let out = run(&["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!data_dir.join("parafa.db").exists(), "the database is PostgreSQL's");
    let out = run(&["admin", "audit", "verify"]);
    assert!(
        text(&out.stdout).contains("intact: 4 rows"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A reader that stops reading (`parafa admin tl show --xml | head -1`) ends the command quietly: no panic, no
/// backtrace, exit code 0, as a Unix tool behaves.
#[test]
fn a_command_whose_reader_stops_reading_ends_quietly() {
    let app = common::TestApp::spawn();
    let mut child = Command::new(common::parafa_bin())
        .args(["admin", "tl", "show", "--xml"])
        .envs(app.env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_BACKTRACE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run parafa");
    // The reader goes away before the command writes anything: everything it writes meets a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert!(out.status.success(), "{:?}: {err}", out.status);
}
