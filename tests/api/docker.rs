//! The container image's data volume (issue 19), checked without a Docker engine (none on the CI machine).
//!
//! Docker fills a new, empty named volume with what the image has at the mount point, ownership and mode included;
//! a mount point the image lacks is created owned by root, and a server running as a non-root user cannot write
//! there. So the checks are: (1) the Dockerfile's runtime stage creates the data directory (the one
//! `PARAFA_DATA_DIR` names, and the one every Parafa service of the compose file mounts its volume on) owned by the
//! non-root user it then switches to, and declares it a volume; (2) the server, run as that uid and gid with only
//! such a directory, provisions its token, CA and database there and serves (run with `setpriv`, as root only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The runtime stage of the Dockerfile (after its last `FROM`), as logical lines (continuations joined).
fn runtime_stage() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docker/Dockerfile")).expect("docker/Dockerfile");
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("a FROM");
    lines.split_off(last_from)
}

/// What the runtime stage says: the user, its uid and gid, the data directory and how it is created.
struct Image {
    user: String,
    uid: u32,
    gid: u32,
    data_dir: String,
    volumes: Vec<String>,
    /// The `install -d -o <owner> -g <group> -m <mode> <dir>` commands of its `RUN`s: dir → (owner, group, mode).
    created: BTreeMap<String, (String, String, String)>,
}

fn image() -> Image {
    let stage = runtime_stage();
    let user = stage
        .iter()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER in the runtime stage")
        .trim()
        .to_owned();
    let words: Vec<String> = stage
        .iter()
        .filter_map(|l| l.strip_prefix("RUN "))
        .flat_map(|l| l.split("&&").map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let flag = |cmd: &str, name: &str| -> Option<String> {
        let parts: Vec<&str> = cmd.split_whitespace().collect();
        parts
            .iter()
            .position(|p| *p == name)
            .and_then(|i| parts.get(i + 1))
            .map(|s| s.to_string())
    };
    let user_name = user.split(':').next().unwrap().to_owned();
    let useradd = words
        .iter()
        .find(|w| w.trim_start().starts_with("useradd") && w.trim_end().ends_with(&format!(" {user_name}")))
        .unwrap_or_else(|| panic!("the runtime stage creates its user {user_name}"));
    let groupadd = words
        .iter()
        .find(|w| w.trim_start().starts_with("groupadd"))
        .expect("the runtime stage creates the user's group");
    let mut created = BTreeMap::new();
    for w in words.iter().filter(|w| w.trim_start().starts_with("install -d")) {
        let dir = w.split_whitespace().last().unwrap().to_owned();
        created.insert(
            dir,
            (
                flag(w, "-o").unwrap_or_default(),
                flag(w, "-g").unwrap_or_default(),
                flag(w, "-m").unwrap_or_default(),
            ),
        );
    }
    let env_line = stage.iter().find(|l| l.starts_with("ENV ")).expect("ENV");
    let data_dir = env_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("PARAFA_DATA_DIR="))
        .expect("PARAFA_DATA_DIR in the image's ENV")
        .to_owned();
    let volumes = stage
        .iter()
        .filter_map(|l| l.strip_prefix("VOLUME "))
        .flat_map(|v| {
            v.trim_matches(|c| c == '[' || c == ']' || c == ' ')
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    Image {
        uid: flag(useradd, "--uid")
            .expect("a fixed uid")
            .parse()
            .expect("a numeric uid"),
        gid: flag(groupadd, "--gid")
            .expect("a fixed gid")
            .parse()
            .expect("a numeric gid"),
        user,
        data_dir,
        volumes,
        created,
    }
}

#[test]
fn the_image_gives_its_data_directory_to_the_non_root_user_the_server_runs_as() {
    let image = image();
    let name = image.user.split(':').next().unwrap().to_owned();
    assert!(
        name != "root" && name != "0" && image.uid != 0,
        "the server does not run as root: USER {}",
        image.user
    );
    let (owner, group, mode) = image
        .created
        .get(&image.data_dir)
        .unwrap_or_else(|| panic!("the image creates {} (install -d)", image.data_dir));
    assert_eq!(owner, &name, "{} is owned by {name}", image.data_dir);
    assert_eq!(group, &name, "{} has {name}'s group", image.data_dir);
    assert_eq!(
        mode, "0700",
        "the token's PINs and the database are the service's alone"
    );
    assert!(
        image.volumes.contains(&image.data_dir),
        "VOLUME {} (an anonymous volume when compose names none)",
        image.data_dir
    );

    // The compose file's Parafa services (one anchor, shared) mount their volume there and point the server at it.
    let compose = std::fs::read_to_string(root().join("docker/compose.yaml")).expect("compose.yaml");
    let builds = compose.matches("dockerfile: docker/Dockerfile").count();
    assert_eq!(
        builds, 1,
        "one service definition builds the image (the others reuse it)"
    );
    let settings: Vec<&str> = compose.lines().map(str::trim).collect();
    assert!(
        settings.contains(&format!("PARAFA_DATA_DIR: {}", image.data_dir).as_str()),
        "compose sets PARAFA_DATA_DIR to {}",
        image.data_dir
    );
    let mounts: Vec<&str> = settings
        .iter()
        .filter_map(|l| l.strip_prefix("volumes: ["))
        .flat_map(|l| l.trim_end_matches(']').split(','))
        .map(str::trim)
        .collect();
    assert!(
        mounts
            .iter()
            .any(|m| m.split(':').nth(1) == Some(image.data_dir.as_str())),
        "a Parafa volume is mounted on {}: {mounts:?}",
        image.data_dir
    );
}

/// The server, as the image's uid and gid and with only a directory made as the image makes it, provisions there
/// and serves: nothing it needs is root's. Runs as root only (to switch user); elsewhere it says it did not run.
#[test]
fn the_server_provisions_and_serves_as_the_images_uid_in_a_directory_made_as_the_image_makes_it() {
    let image = image();
    if !is_root() {
        eprintln!("SKIPPED: switching to uid {} needs root (CI runs as root)", image.uid);
        return;
    }
    // A directory every user can reach (the test's temporary directories are private to root), holding the data
    // directory made as the Dockerfile makes it.
    let parent = std::env::temp_dir().join(format!("parafa-docker-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&parent).unwrap();
    let _cleanup = RemoveOnDrop(parent.clone());
    common::run_ok("chmod", &["0755", parent.to_str().unwrap()]);
    let data = parent.join("data");
    let (owner, _, mode) = &image.created[&image.data_dir];
    assert!(!owner.is_empty());
    let (uid, gid) = (image.uid.to_string(), image.gid.to_string());
    common::run_ok(
        "install",
        &["-d", "-o", &uid, "-g", &gid, "-m", mode, data.to_str().unwrap()],
    );
    let bin = server_copy(&parent);
    let out = as_image_user(&image, &bin, &data, &["init"]);
    assert!(
        out.status.success(),
        "parafa init as uid {uid}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for made in ["parafa.db", "softhsm2.conf", "tokens"] {
        let meta = std::fs::metadata(data.join(made)).unwrap_or_else(|e| panic!("{made}: {e}"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (meta.uid(), meta.gid()),
            (image.uid, image.gid),
            "{made} belongs to the service"
        );
    }
    let out = as_image_user(&image, &bin, &data, &["admin", "audit", "verify"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("intact"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The server binary, copied where the image's user can run it (the build tree may not be reachable to it).
fn server_copy(dir: &Path) -> PathBuf {
    let bin = dir.join("parafa");
    std::fs::copy(common::parafa_bin(), &bin).expect("copy the server");
    common::run_ok("chmod", &["0755", bin.to_str().unwrap()]);
    bin
}

fn as_image_user(image: &Image, bin: &Path, data: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={}", image.uid),
            &format!("--regid={}", image.gid),
            "--clear-groups",
            "--",
        ])
        .arg(bin)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", data)
        .env("PARAFA_DATA_DIR", data)
        .env("PARAFA_LOG", "error")
        .current_dir(data)
        .output()
        .expect("setpriv")
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
