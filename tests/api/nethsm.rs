//! Parafa on a token behind p11-kit's RPC (`p11-kit server` and `p11-kit-client.so`), the stand-in for a network
//! HSM of `benches/nethsm.rs`. p11-kit before 0.25 does not forward `CKM_AES_GCM`: the TOTP seeds, wrapped with
//! AES-GCM under the token's key, must still open through it, and what is wrapped through it must open on SoftHSM2
//! directly.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::common::{parafa_bin, Holder, TestApp, HOLDER_PASSWORD};

/// `p11-kit-client.so` from the Debian package p11-kit-modules.
fn client_module() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("pkcs11/p11-kit-client.so")))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .expect("p11-kit-client.so (package p11-kit-modules; `make test` installs it)")
}

/// `p11-kit server` in the foreground exporting the app's SoftHSM2 token; its child and the address it printed.
fn p11_kit_server(app: &TestApp) -> (Child, String) {
    let socket = app.data_dir.with_file_name("p11-kit.sock");
    let mut child = Command::new("p11-kit")
        .args(["server", "--foreground", "--name"])
        .arg(&socket)
        .args(["--provider", "/usr/lib/softhsm/libsofthsm2.so", "pkcs11:token=parafa"])
        .env("SOFTHSM2_CONF", app.softhsm_conf())
        .stdout(Stdio::piped())
        .spawn()
        .expect("p11-kit server (package p11-kit)");
    let stdout = child.stdout.take().expect("stdout");
    let address = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("P11_KIT_SERVER_ADDRESS=")
                .map(|r| r.split(';').next().unwrap_or_default().to_owned())
        })
        .expect("P11_KIT_SERVER_ADDRESS from p11-kit server");
    (child, address)
}

/// A holder created by the CLI with its token on the RPC.
fn create_holder_through_rpc(app: &TestApp, rpc: &[(&str, &str)], email: &str) -> Holder {
    let out = Command::new(parafa_bin())
        .env_remove("SOFTHSM2_CONF")
        .envs(app.env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(rpc.iter().copied())
        .env("PARAFA_LOG", "error")
        .args([
            "admin",
            "holder",
            "create",
            "--email",
            email,
            "--name",
            "Ana Maria Popescu",
        ])
        .args([
            "--phone",
            "+40712345678",
            "--password",
            HOLDER_PASSWORD,
            "--package",
            "1",
            "--key",
            "p256",
        ])
        .output()
        .expect("run parafa");
    assert!(
        out.status.success(),
        "holder create through p11-kit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut holder = Holder::parse(&String::from_utf8_lossy(&out.stdout));
    holder.email = email.to_owned();
    holder
}

#[test]
fn totp_seeds_wrapped_on_softhsm_open_through_p11_kit_rpc_and_back() {
    let mut app = TestApp::spawn();
    let direct = app.create_holder("direct@example.com", "p256", 1);
    app.stop();
    let (mut p11, address) = p11_kit_server(&app);
    let module = client_module();
    let module = module.to_str().expect("UTF-8 path");
    let rpc = [
        ("PARAFA_HSM_MODULE", module),
        ("PARAFA_HSM_MANAGE_SOFTHSM", "false"),
        ("P11_KIT_SERVER_ADDRESS", address.as_str()),
    ];
    let through_rpc = create_holder_through_rpc(&app, &rpc, "rpc@example.com");

    // The server on the RPC checks TOTP codes of both holders: the seeds open, whichever side wrapped them.
    let (mut server, base) = app.serve_piped(&[], &rpc);
    app.base = base;
    for holder in [&direct, &through_rpc] {
        assert!(!app.login(holder).is_empty(), "{}", holder.email);
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = p11.kill();
    let _ = p11.wait();

    // And on SoftHSM2 directly again, the seed wrapped through the RPC opens too.
    app.start();
    assert!(!app.login(&through_rpc).is_empty());
}
