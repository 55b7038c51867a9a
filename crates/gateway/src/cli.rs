//! The `tidings` command line.

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use tidings_procedures::{
    App, AppConfig, Caller, Ctx, Db, Error, RawInput, Registry, ServiceCaller, create_service_key,
};

use crate::Config;

#[derive(Debug, Parser)]
#[command(
    name = "tidings",
    version,
    about = "Tidings: in-app inbox, fan-out, banners, email and push"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage service keys for internal callers.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Load demo data in bulk: users, notifications, and optionally one session each.
    Demo(crate::demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print it as one JSON line.
    Create(CreateUser),
}

#[derive(Debug, Args)]
pub struct CreateUser {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub password: String,
    #[arg(long)]
    pub name: Option<String>,
    /// The organization's name; created when no organization has it.
    #[arg(long)]
    pub organization: Option<String>,
    /// Give the user the admin role.
    #[arg(long)]
    pub admin: bool,
    /// The user's id (the host product's id); generated when absent.
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it alone on one line (it is shown only now).
    Create {
        #[arg(long)]
        name: String,
    },
    /// Revoke the key with this name.
    Revoke {
        #[arg(long)]
        name: String,
    },
    /// List keys (names and dates, never the secrets).
    List,
}

/// The command line acts as a built-in service with instance-wide reach.
fn cli_ctx(db: Db) -> Ctx {
    Ctx {
        app: App::new(db, AppConfig::default()),
        caller: Some(Caller::Service(ServiceCaller {
            key_id: uuid::Uuid::nil(),
            name: "cli".to_owned(),
        })),
        session: Default::default(),
        client_ip: None,
    }
}

async fn call(db: Db, name: &str, input: Value) -> Result<Value, Error> {
    let registry = Registry::new();
    let procedure = registry.get(name).expect("registered procedure");
    procedure
        .call(cli_ctx(db), RawInput::Json(input))
        .await
        .map(|output| output.to_value())
}

pub async fn create_user(db: &Db, args: CreateUser) -> Result<Value, Error> {
    let organization_id = match args.organization {
        None => None,
        Some(name) => match db.organization_by_name(&name).await? {
            Some(org) => Some(org.id.into_string()),
            None => {
                let created =
                    call(db.clone(), "organizations.create", json!({ "name": name })).await?;
                created["id"].as_str().map(str::to_owned)
            }
        },
    };
    let mut input = json!({
        "email": args.email,
        "password": args.password,
        "role": if args.admin { "admin" } else { "user" },
    });
    for (key, value) in [
        ("name", args.name),
        ("organizationId", organization_id),
        ("id", args.id),
    ] {
        if let Some(value) = value {
            input[key] = Value::String(value);
        }
    }
    call(db.clone(), "users.create", input).await
}

/// Runs a command that is not `serve`; returns what to print on standard output.
pub async fn run(command: Command, config: &Config) -> Result<String, Error> {
    let db = Db::connect_and_migrate(&config.database_url).await?;
    let out = match command {
        Command::Serve => unreachable!("serve is run by main"),
        Command::Migrate => "Database is up to date".to_owned(),
        Command::Users(UsersCommand::Create(args)) => create_user(&db, args).await?.to_string(),
        Command::Demo(args) => crate::demo::run(&db, args, config.session_ttl).await?,
        Command::Keys(KeysCommand::Create { name }) => create_service_key(&db, &name).await?.1,
        Command::Keys(KeysCommand::Revoke { name }) => {
            if db.revoke_service_key(&name).await? {
                format!("Revoked key {name}")
            } else {
                return Err(Error::not_found(format!("No active key named {name:?}")));
            }
        }
        Command::Keys(KeysCommand::List) => db
            .service_keys()
            .await?
            .into_iter()
            .map(|k| {
                json!({
                    "id": k.id.to_string(),
                    "name": k.name,
                    "createdAt": tidings_procedures::format_timestamp(k.created_at),
                    "revokedAt": k.revoked_at.map(tidings_procedures::format_timestamp),
                })
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let _ = db.close().await;
    Ok(out)
}
