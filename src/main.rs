//! The `parafa` command: `serve` (default), `admin …` for operators, `hsm …` to inspect the token.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;

use parafa::app::AppState;
use parafa::config::Settings;
use parafa::db::users::Role;
use parafa::hsm::{self, KeySpec};
use parafa::lifecycle::holders::{self, HolderRequest};
use parafa::{audit, clock, startup};

/// `print!`/`println!` for a command's output. A reader that stops reading (`parafa admin tl show --xml | head`) ends
/// the command quietly, as a Unix tool does, instead of a panic with a backtrace; another write failure is said on
/// standard error with exit code 1.
macro_rules! emit {
    ($newline:expr, $($arg:tt)*) => {{
        let mut stdout = std::io::stdout().lock();
        let written = stdout.write_fmt(format_args!($($arg)*)).and_then(|()| {
            if $newline { stdout.write_all(b"\n") } else { Ok(()) }
        });
        if let Err(e) = written.and_then(|()| stdout.flush()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("parafa: cannot write the output: {e}");
                std::process::exit(1);
            }
            std::process::exit(0);
        }
    }};
}
macro_rules! out {
    () => { emit!(true, "") };
    ($($arg:tt)*) => { emit!(true, $($arg)*) };
}
macro_rules! out_raw {
    ($($arg:tt)*) => { emit!(false, $($arg)*) };
}

#[derive(Parser)]
#[command(name = "parafa", version, about = "Remote qualified-signature service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Provision on first start (database, token, CA), then serve HTTP.
    Serve,
    /// Provision the data directory (database, token, CA) if not done yet, print where, and exit.
    Init,
    /// Operator tasks, on the data directory `parafa serve` or `parafa init` provisioned (`PARAFA_DATA_DIR`).
    #[command(subcommand)]
    Admin(Admin),
    /// Inspect the token of a provisioned data directory.
    #[command(subcommand)]
    Hsm(HsmCmd),
}

#[derive(Subcommand)]
enum Admin {
    /// Holders.
    #[command(subcommand)]
    Holder(HolderCmd),
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Delete what expired more than a day ago (SADs, tokens, sessions, codes, flows); also runs every 15 minutes in
    /// `serve`.
    Cleanup,
    /// Print a certificate as PEM: `root`, `issuing`, or a holder certificate's serial (hex).
    Cert {
        /// `root`, `issuing`, or a holder certificate's serial number in hex.
        which: String,
    },
    /// Show a credential: status, certificate, quota and the signatures recorded against it.
    Credential {
        /// The credential's id (`credential_id` as `admin holder create` prints it).
        id: String,
    },
    /// Revoke a credential's certificate (key_compromise, affiliation_changed, superseded, cessation_of_operation,
    /// privilege_withdrawn, unspecified).
    Revoke {
        /// The credential whose certificate is revoked.
        credential_id: String,
        /// The CRL reason code.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Operators: `parafa admin operator create …`.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// The identification queue: list, accept, return or reject.
    #[command(subcommand)]
    Identity(IdentityCmd),
    /// Rekey requests: list, approve or reject.
    #[command(subcommand)]
    Rekey(RekeyCmd),
    /// The lifecycle scheduler: `parafa admin lifecycle run` runs it once (reminders, successors, refunds).
    #[command(subcommand)]
    Lifecycle(LifecycleCmd),
    /// The retention engine (product rules §9): `parafa admin retention run` deletes or anonymises what is due now
    /// (it also runs once a day in `serve`).
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// OAuth 2.0 client applications: create, list, disable.
    #[command(subcommand)]
    OauthClient(OauthClientCmd),
    /// The trusted list of Parafa's trust services (`/pki/tl.xml`): show it, sign a new one, change a service's
    /// status.
    #[command(subcommand)]
    Tl(TlCmd),
}

#[derive(Subcommand)]
enum TlCmd {
    /// The list served now (signed afresh first if its content changed): number, dates, and each service with
    /// its status history; `--xml` prints the signed list itself.
    Show {
        /// Print the signed XML list itself instead of the summary.
        #[arg(long)]
        xml: bool,
    },
    /// Sign a new list now (the next sequence number), whether or not anything changed.
    Sign,
    /// Record a service's status from now on (`granted` or `withdrawn`), then sign a new list. The service ids
    /// are those `show` prints.
    Status {
        /// The service's id, as `parafa admin tl show` prints it.
        service_id: String,
        /// The new status.
        #[arg(value_parser = ["granted", "withdrawn"])]
        status: String,
        /// Why, recorded with the status.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum OauthClientCmd {
    /// Register an application; prints its client_id and, for a confidential one, its secret (shown once).
    Create {
        /// The application's name, shown to holders when it asks for consent.
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for several): https, or http on a loopback address for native apps.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uri: Vec<String>,
        /// A public client (native or desktop app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// The scopes it may ask, comma-separated (default: service,credential).
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
    },
    /// Every application, one a line.
    List,
    /// Disable an application and revoke every grant and token it holds.
    Disable {
        /// The application's client_id.
        id: String,
    },
}

#[derive(Subcommand)]
enum RetentionCmd {
    /// Run every retention class once, now: prints what was deleted or anonymised, per class.
    Run,
}

#[derive(Subcommand)]
enum LifecycleCmd {
    /// Run the scheduler once: expiry reminders, successor certificates, refunds.
    Run,
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Create an operator account with its TOTP pairing; prints the TOTP secret (shown once).
    Create {
        /// The operator's login email.
        #[arg(long)]
        email: String,
        /// "Given Surname" (the last word is the surname).
        #[arg(long)]
        name: String,
        /// The operator's own mobile number, in international form: password-recovery and pairing codes go there,
        /// so there is no default.
        #[arg(long)]
        phone: String,
        /// The operator's login password (better given through the environment than on the command line).
        #[arg(long, env = "PARAFA_HOLDER_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
enum IdentityCmd {
    /// The identification sessions waiting for an operator, as JSON.
    List {
        /// Only the sessions flagged for a closer look.
        #[arg(long)]
        flagged: bool,
    },
    /// Accept an identification: the holder may issue their certificate.
    Accept {
        /// The identification session's id, as `list` prints it.
        session_id: String,
    },
    /// Return an identification to the holder to correct and resubmit.
    Return {
        /// The identification session's id, as `list` prints it.
        session_id: String,
        /// What the holder must correct (sent to them).
        #[arg(long)]
        reason: String,
    },
    /// Reject an identification.
    Reject {
        /// The identification session's id, as `list` prints it.
        session_id: String,
        /// Why (sent to the holder).
        #[arg(long)]
        reason: String,
        /// Fake or forged data, or another's identity: pending orders cancelled and a ban.
        #[arg(long)]
        fake: bool,
    },
}

#[derive(Subcommand)]
enum RekeyCmd {
    /// The rekey requests waiting for an operator, as JSON.
    List,
    /// Approve a rekey request: a new key and certificate are issued.
    Approve {
        /// The rekey request's id, as `list` prints it.
        request_id: String,
    },
    /// Reject a rekey request.
    Reject {
        /// The rekey request's id, as `list` prints it.
        request_id: String,
        /// Why (sent to the holder).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum HolderCmd {
    /// Create an active holder with a TOTP pairing, a key in the HSM, a certificate and a package's quota.
    Create(CreateHolder),
}

#[derive(Args)]
struct CreateHolder {
    /// The holder's login email.
    #[arg(long)]
    email: String,
    /// "Given Surname" (the last word is the surname).
    #[arg(long)]
    name: String,
    /// With country prefix, e.g. +40712345678.
    #[arg(long)]
    phone: String,
    /// The holder's login password (better given through the environment than on the command line).
    #[arg(long, env = "PARAFA_HOLDER_PASSWORD", hide_env_values = true)]
    password: String,
    /// 1, 2 or 3 (1/2/3 years, 200/400/600 transactions).
    #[arg(long, default_value_t = 1)]
    package: u8,
    /// The key pair generated in the HSM.
    #[arg(long, default_value = "rsa2048", ignore_case = true, value_parser = key_parser())]
    key: KeySpec,
    /// Login without a TOTP code (signature authorisation always needs one).
    #[arg(long)]
    no_2fa: bool,
    /// The subject's serialNumber, e.g. PNORO-1900101123456.
    #[arg(long)]
    id_number: Option<String>,
    /// Name a pseudonym in the certificate instead of the real name.
    #[arg(long)]
    pseudonym: Option<String>,
    /// The subject's country (ISO 3166 two-letter code).
    #[arg(long, default_value = "RO")]
    country: String,
    /// An account with its TOTP pairing but no certificate yet (it orders one).
    #[arg(long)]
    no_certificate: bool,
}

/// `--key`: one of the key types `KeySpec` reads (listed in `--help`, any case).
fn key_parser() -> impl clap::builder::TypedValueParser<Value = KeySpec> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(["rsa2048", "rsa3072", "p256", "p384"]).try_map(|s| s.parse::<KeySpec>())
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Seal pending rows, then check the whole chain; exits non-zero if it is broken.
    Verify,
}

#[derive(Subcommand)]
enum HsmCmd {
    /// Every object in the token with its class, label, id and protection attributes.
    List {
        /// Print the objects as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PARAFA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // One line per finished request, with its request id, route, status and latency.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("parafa: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load()?;
    let command = cli.command.unwrap_or(Command::Serve);
    // Only `serve` and `init` provision: an operator command run from the wrong directory (or without the server's
    // PARAFA_DATA_DIR) must not make a second token, CA and database that nothing serves.
    let provisions = matches!(command, Command::Serve | Command::Init);
    if !provisions {
        require_provisioned(&settings)?;
    }
    keep_files_private(&settings, provisions)?;
    // SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize: set it while this process has one thread.
    hsm::prepare_softhsm(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            Command::Serve => serve(settings).await,
            Command::Init => init(settings).await,
            Command::Admin(cmd) => admin(settings, cmd).await,
            Command::Hsm(HsmCmd::List { json }) => hsm_list(settings, json).await,
        }
    })
}

/// The database, the token, its PIN file, the outbox and the uploads are readable by the service's user only: files
/// this process creates get mode 0600 (directories 0700) whatever umask it was started with, and the data
/// directory (and an outbox directory outside it), if made by an earlier version with the umask's 0755, are closed
/// to other users, which shuts everything under them. Only when `provisions` (`serve`, `init`) is a missing data
/// directory created; other commands have checked that it exists ([`require_provisioned`]).
fn keep_files_private(settings: &Settings, provisions: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    if !provisions && !settings.data_dir.is_dir() {
        bail!("no data directory at {}", shown(&settings.data_dir));
    }
    let outbox = settings.notify.file_sink_dir(&settings.data_dir);
    for dir in [settings.data_dir.clone(), outbox] {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to the service's user", dir.display()))?;
    }
    Ok(())
}

/// A path as the operator should read it: absolute when it can be made so.
fn shown(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// The SQLite database file the settings name, if the database is SQLite on a file.
fn sqlite_file(settings: &Settings) -> Option<std::path::PathBuf> {
    let Some(url) = &settings.database_url else {
        return Some(settings.data_dir.join("parafa.db"));
    };
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Before an `admin` or `hsm` command opens anything: the data directory must be one that `parafa serve` or `parafa
/// init` provisioned. That is: the directory exists; with SQLite, the database file exists; when Parafa manages
/// SoftHSM2, its `softhsm2.conf` and a token under `tokens/` exist (with PostgreSQL this is what ties the
/// directory to a provisioned instance: the CA's keys live in that token). Otherwise the command stops before
/// creating anything, naming the directory it looked in and how to point it at the server's.
fn require_provisioned(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    let mut missing = Vec::new();
    if !dir.is_dir() {
        missing.push("the directory does not exist".to_owned());
    } else {
        if let Some(db) = sqlite_file(settings) {
            if !db.is_file() {
                missing.push(format!("no database {}", shown(&db)));
            }
        }
        if settings.manages_softhsm() {
            let conf = dir.join("softhsm2.conf");
            let tokens = dir.join("tokens");
            let has_token = std::fs::read_dir(&tokens).is_ok_and(|mut d| d.next().is_some());
            if !conf.is_file() || !has_token {
                missing.push(format!(
                    "no SoftHSM2 token ({} and {})",
                    conf.display(),
                    tokens.display()
                ));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "no provisioned Parafa data directory at {} ({}); nothing was created. Point this command at the \
         server's data directory, e.g. `PARAFA_DATA_DIR=/path/to/server/data parafa admin …` (or `data_dir` in \
         the file PARAFA_CONFIG names), or provision this one first with `parafa init` (or `parafa serve`)",
        shown(dir),
        missing.join("; ")
    )
}

/// `init`: provisions the data directory (as `serve` does on first start), says where, and exits.
async fn init(settings: Settings) -> anyhow::Result<ExitCode> {
    let dir = shown(&settings.data_dir);
    let database = match sqlite_file(&settings) {
        Some(db) => shown(&db),
        None => "the configured database_url".to_owned(),
    };
    let state = startup::provision(settings, None).await?;
    audit::seal(&state.db).await?;
    out!("provisioned: {dir}");
    out!("database: {database}");
    out!("token: {}", state.hsm.token_label());
    out!("root CA and issuing CA: in the token and the database");
    out!("next: `PARAFA_DATA_DIR={dir} parafa serve`, and `PARAFA_DATA_DIR={dir} parafa admin …`");
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    settings.check_hsm_module()?;
    let listen = settings.listen.clone();
    let listener = TcpListener::bind(&listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // With port 0 the URLs written into certificates must name the port actually bound.
    let state = startup::provision(settings, Some(addr)).await?;
    if state.settings.dev {
        let banner = "DEVELOPMENT MODE: the sandbox payment gateway and the sandbox identification are served; \
                      anyone can pay their own order and declare any identity. Never run this in production.";
        tracing::warn!("{banner}");
        eprintln!("\n*** {banner} ***\n");
    }
    tracing::info!(%addr, token = state.hsm.token_label(), "Parafa is serving");
    // Scripts and tests read this line to find the port when listening on port 0.
    out!("listening on http://{addr}");
    std::io::stdout().flush()?;
    startup::run(state, listener)?.await?;
    Ok(ExitCode::SUCCESS)
}

async fn admin(settings: Settings, cmd: Admin) -> anyhow::Result<ExitCode> {
    let state = startup::provision(settings, None).await?;
    match cmd {
        Admin::Holder(HolderCmd::Create(h)) => holder_create(&state, h).await,
        Admin::Audit(AuditCmd::Verify) => audit_verify(&state).await,
        Admin::Credential { id } => credential_show(&state, &id).await,
        Admin::Cleanup => cleanup(&state).await,
        Admin::Revoke { credential_id, reason } => revoke(&state, &credential_id, &reason).await,
        Admin::Operator(OperatorCmd::Create {
            email,
            name,
            phone,
            password,
        }) => operator_create(&state, email, &name, phone, password).await,
        Admin::Identity(cmd) => identity_cmd(&state, cmd).await,
        Admin::Rekey(cmd) => rekey_cmd(&state, cmd).await,
        Admin::Lifecycle(LifecycleCmd::Run) => lifecycle_run(&state).await,
        Admin::Retention(RetentionCmd::Run) => retention_run(&state).await,
        Admin::Cert { which } => cert_show(&state, &which).await,
        Admin::OauthClient(cmd) => oauth_client_cmd(&state, cmd).await,
        Admin::Tl(cmd) => tl_cmd(&state, cmd).await,
    }
}

/// "Given Surname": the last word is the surname.
fn split_name(name: &str) -> anyhow::Result<(String, String)> {
    match name.trim().rsplit_once(char::is_whitespace) {
        Some((g, s)) => Ok((g.trim().to_owned(), s.to_owned())),
        None => bail!("--name needs a given name and a surname, e.g. \"Ana Popescu\""),
    }
}

/// Creates an account ready to use (`admin holder create`, `admin operator create`).
async fn create_ready(state: &AppState, req: HolderRequest) -> anyhow::Result<holders::ReadyHolder> {
    let created = holders::create_ready_holder(
        &state.db,
        &state.hsm,
        &state.ca,
        &state.settings,
        state.clock.as_ref(),
        req,
        "admin-cli",
    )
    .await?;
    audit::seal(&state.db).await?;
    Ok(created)
}

/// `admin holder create`.
async fn holder_create(state: &AppState, h: CreateHolder) -> anyhow::Result<ExitCode> {
    let (given_name, surname) = split_name(&h.name)?;
    let req = HolderRequest {
        email: h.email,
        given_name,
        surname,
        phone: h.phone,
        password: h.password.into(),
        package: h.package,
        key: h.key,
        two_factor: !h.no_2fa,
        id_number: h.id_number,
        pseudonym: h.pseudonym,
        country: h.country,
        role: Role::Holder,
        certificate: !h.no_certificate,
    };
    let holder = create_ready(state, req).await?;
    out!("user_id: {}", holder.user_id);
    out!("credential_id: {}", holder.credential_id);
    out!("certificate_serial: {}", holder.cert_serial);
    if holder.credential_id.is_empty() {
        out!("valid_until: -");
    } else {
        out!("valid_until: {}", clock::rfc3339(holder.not_after));
    }
    out!("transactions: {}", holder.transactions);
    out!("totp_secret: {}", holder.secret_base32.expose_secret());
    out!("otpauth: {}", holder.otpauth_uri.expose_secret());
    Ok(ExitCode::SUCCESS)
}

/// `admin operator create`.
async fn operator_create(
    state: &AppState,
    email: String,
    name: &str,
    phone: String,
    password: String,
) -> anyhow::Result<ExitCode> {
    let (given_name, surname) = split_name(name)?;
    let req = HolderRequest {
        email,
        given_name,
        surname,
        phone,
        password: password.into(),
        package: 1,
        key: KeySpec::P256,
        two_factor: true,
        id_number: None,
        pseudonym: None,
        country: "RO".into(),
        role: Role::Operator,
        certificate: false,
    };
    let op = create_ready(state, req).await?;
    out!("user_id: {}", op.user_id);
    out!("totp_secret: {}", op.secret_base32.expose_secret());
    out!("otpauth: {}", op.otpauth_uri.expose_secret());
    Ok(ExitCode::SUCCESS)
}

/// `admin audit verify`: exit code 2 when the chain is broken.
async fn audit_verify(state: &AppState) -> anyhow::Result<ExitCode> {
    let v = audit::verify(&state.db).await?;
    match v.broken {
        None => {
            out!("audit chain intact: {} rows", v.rows);
            Ok(ExitCode::SUCCESS)
        }
        Some(why) => {
            out!("audit chain BROKEN after {} good rows: {why}", v.rows);
            Ok(ExitCode::from(2))
        }
    }
}

/// `admin credential <id>`.
async fn credential_show(state: &AppState, id: &str) -> anyhow::Result<ExitCode> {
    let db = &state.db;
    let cred = parafa::db::credentials::credential(db, id)
        .await?
        .with_context(|| format!("no credential {id}"))?;
    let quota = parafa::db::credentials::quota(db, id)
        .await?
        .context("credential without quota")?;
    let recorded = parafa::db::signing::signature_count(db, id).await?;
    out!("credential_id: {}", cred.id);
    out!("user_id: {}", cred.user_id);
    out!("status: {}", cred.status);
    out!("key: {}", cred.key_spec);
    out!("certificate_serial: {}", cred.cert_serial);
    out!("package: {}", quota.package_id);
    out!("quota_total: {}", quota.total);
    out!("quota_used: {}", quota.used);
    out!("quota_left: {}", quota.remaining());
    out!("signatures_recorded: {recorded}");
    Ok(ExitCode::SUCCESS)
}

/// `admin oauth-client create|list|disable`.
async fn oauth_client_cmd(state: &AppState, cmd: OauthClientCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        OauthClientCmd::Create {
            name,
            redirect_uri,
            public,
            scope,
        } => oauth_client_create(state, name, redirect_uri, public, scope).await,
        OauthClientCmd::List => oauth_client_list(state).await,
        OauthClientCmd::Disable { id } => oauth_client_disable(state, &id).await,
    }
}

/// `admin oauth-client create`.
async fn oauth_client_create(
    state: &AppState,
    name: String,
    redirect_uris: Vec<String>,
    public: bool,
    scopes: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let svc = state.oauth();
    let new = parafa::oauth::clients::NewClient {
        name,
        redirect_uris,
        public,
        scopes,
    };
    let registered = parafa::oauth::clients::create(svc, new, "admin-cli", "cli").await?;
    audit::seal(&state.db).await?;
    out!("client_id: {}", registered.client_id);
    if let Some(secret) = registered.secret {
        out!("client_secret: {}", secret.expose_secret());
    }
    Ok(ExitCode::SUCCESS)
}

/// `admin oauth-client list`.
async fn oauth_client_list(state: &AppState) -> anyhow::Result<ExitCode> {
    for c in parafa::oauth::clients::list(state.oauth()).await? {
        out!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            c.id,
            if c.confidential { "confidential" } else { "public" },
            if c.disabled { "disabled" } else { "enabled" },
            c.scopes.join(","),
            c.redirect_uris.join(" "),
            c.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `admin oauth-client disable`.
async fn oauth_client_disable(state: &AppState, id: &str) -> anyhow::Result<ExitCode> {
    if !parafa::oauth::clients::disable(state.oauth(), id, "admin-cli", "cli").await? {
        bail!("no OAuth client {id}");
    }
    audit::seal(&state.db).await?;
    out!("disabled: {id}");
    Ok(ExitCode::SUCCESS)
}

/// `admin cleanup`.
async fn cleanup(state: &AppState) -> anyhow::Result<ExitCode> {
    let report = parafa::db::cleanup::run(&state.db, parafa::clock::Clock::now(state.clock.as_ref())).await?;
    for (table, n) in report {
        let left = parafa::db::cleanup::count(&state.db, table).await?;
        out!("{table}: {n} deleted, {left} left");
    }
    Ok(ExitCode::SUCCESS)
}

/// `admin revoke <credential> --reason …`.
async fn revoke(state: &AppState, credential_id: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let serial =
        parafa::lifecycle::revoke::revoke_credential(state, credential_id, None, reason, "admin-cli", "cli").await?;
    audit::seal(&state.db).await?;
    out!("revoked: {serial} ({reason})");
    Ok(ExitCode::SUCCESS)
}

/// `admin identity list|accept|return|reject`.
async fn identity_cmd(state: &AppState, cmd: IdentityCmd) -> anyhow::Result<ExitCode> {
    use parafa::lifecycle::identity::{self, Decision, Verdict};
    let verdict = |decision, reason, fake| Verdict { decision, reason, fake };
    let (id, verdict) = match cmd {
        IdentityCmd::List { flagged } => {
            let q = identity::queue(state, None, flagged).await?;
            out!("{}", serde_json::to_string_pretty(&q)?);
            return Ok(ExitCode::SUCCESS);
        }
        IdentityCmd::Accept { session_id } => (session_id, verdict(Decision::Accept, None, false)),
        IdentityCmd::Return { session_id, reason } => (session_id, verdict(Decision::Return, Some(reason), false)),
        IdentityCmd::Reject {
            session_id,
            reason,
            fake,
        } => (session_id, verdict(Decision::Reject, Some(reason), fake)),
    };
    let out = identity::decide(state, &id, verdict, "admin-cli").await?;
    audit::seal(&state.db).await?;
    out!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// `admin rekey list|approve|reject`.
async fn rekey_cmd(state: &AppState, cmd: RekeyCmd) -> anyhow::Result<ExitCode> {
    use parafa::lifecycle::rekey;
    let out = match cmd {
        RekeyCmd::List => serde_json::to_value(rekey::queue(state, None).await?)?,
        RekeyCmd::Approve { request_id } => {
            serde_json::to_value(rekey::decide(state, &request_id, true, None, "admin-cli").await?)?
        }
        RekeyCmd::Reject { request_id, reason } => {
            serde_json::to_value(rekey::decide(state, &request_id, false, Some(&reason), "admin-cli").await?)?
        }
    };
    audit::seal(&state.db).await?;
    out!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// `admin lifecycle run`: one run of the scheduler.
async fn lifecycle_run(state: &AppState) -> anyhow::Result<ExitCode> {
    let r = parafa::lifecycle::scheduler::tick(state).await;
    audit::seal(&state.db).await?;
    out!("reminders: {}", r.reminders);
    out!("successors: {}", r.successors);
    out!("refunds: {}", r.refunds);
    Ok(ExitCode::SUCCESS)
}

async fn retention_run(state: &AppState) -> anyhow::Result<ExitCode> {
    let r = parafa::lifecycle::retention::run(state).await?;
    audit::seal(&state.db).await?;
    println!("contact_messages_deleted: {}", r.contact_messages_deleted);
    println!("orders_anonymised: {}", r.orders_anonymised);
    println!("evidence_erased: {}", r.evidence_erased);
    println!("consents_deleted: {}", r.consents_deleted);
    println!("messages_deleted: {}", r.messages_deleted);
    println!("audit_rows_deleted: {}", r.audit_rows_deleted);
    Ok(ExitCode::SUCCESS)
}

/// `admin cert root|issuing|<serial>`: the certificate as PEM.
async fn cert_show(state: &AppState, which: &str) -> anyhow::Result<ExitCode> {
    let der = match which {
        "root" => state.ca.root.der.clone(),
        "issuing" => state.ca.issuing.der.clone(),
        serial => {
            let row = parafa::db::credentials::certificate(&state.db, &serial.to_lowercase())
                .await?
                .with_context(|| format!("no certificate with serial {serial}"))?;
            if row.cert_der.is_empty() {
                anyhow::bail!("the certificate {serial} was erased by the retention rules, ten years after it expired");
            }
            parafa::db::unb64(&row.cert_der, "certificates.cert_der")?
        }
    };
    out_raw!("{}", parafa::ca::pem(&der));
    Ok(ExitCode::SUCCESS)
}

async fn tl_cmd(state: &AppState, cmd: TlCmd) -> anyhow::Result<ExitCode> {
    use parafa::clock::Clock;
    use parafa::trust::list::Status;
    let now = state.clock.now();
    let (trust, db, hsm, settings) = (&state.trust, &state.db, &state.hsm, &state.settings);
    let list = match cmd {
        TlCmd::Show { xml: true } => {
            out_raw!("{}", trust.current(db, hsm, settings, now).await?.xml);
            return Ok(ExitCode::SUCCESS);
        }
        TlCmd::Show { xml: false } => (*trust.current(db, hsm, settings, now).await?).clone(),
        TlCmd::Sign => trust.sign_now(db, hsm, settings, now).await?,
        TlCmd::Status {
            service_id,
            status,
            reason,
        } => {
            let status = Status::parse(&status).context("status: granted or withdrawn")?;
            let clock = state.clock.as_ref();
            match trust
                .set_status(db, hsm, settings, clock, &service_id, status, &reason)
                .await?
            {
                Some(list) => list,
                None => bail!("no trust service {service_id:?}: `parafa admin tl show` lists them"),
            }
        }
    };
    let date = parafa::trust::list::date_time;
    out!(
        "trusted list {} issued {} next update {} (at {}/pki/tl.xml)",
        list.sequence,
        date(list.issued_at),
        date(list.next_update),
        state.ca.public_base()
    );
    let statuses = parafa::db::trust::statuses(db).await?;
    for service in parafa::db::trust::services(db).await? {
        out!("{}  {}  {}", service.id, service.kind, service.name);
        for st in statuses.iter().filter(|st| st.service_id == service.id) {
            let reason = st.reason.as_deref().map(|r| format!("  ({r})")).unwrap_or_default();
            out!("    {} since {}{reason}", st.status, date(st.since));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn hsm_list(settings: Settings, json: bool) -> anyhow::Result<ExitCode> {
    let state = startup::provision(settings, None).await?;
    let hsm = state.hsm.clone();
    let objects = tokio::task::spawn_blocking(move || hsm.list_objects()).await??;
    if json {
        out!("{}", serde_json::to_string_pretty(&objects)?);
        return Ok(ExitCode::SUCCESS);
    }
    let b = |v: Option<bool>| match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    out!(
        "{:<16} {:<8} {:<38} {:<32} {:<6} {:<8} {:<10} {:<12} {:<5}",
        "CLASS",
        "TYPE",
        "ID",
        "LABEL",
        "TOKEN",
        "PRIVATE",
        "SENSITIVE",
        "EXTRACTABLE",
        "SIGN"
    );
    for o in objects {
        out!(
            "{:<16} {:<8} {:<38} {:<32} {:<6} {:<8} {:<10} {:<12} {:<5}",
            o.class,
            o.key_type.as_deref().unwrap_or("-"),
            o.id,
            o.label,
            b(o.token),
            b(o.private),
            b(o.sensitive),
            b(o.extractable),
            b(o.sign)
        );
    }
    Ok(ExitCode::SUCCESS)
}
