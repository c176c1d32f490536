//! `mamori admin …`: the same acts as the API's admin endpoints, straight on the database,
//! for whoever runs the centre's host.

use crate::cli::{AdminCommand, OrgCommand, TokenCommand, UserCommand};
use crate::config::MamoriConfig;
use crate::serve::open_store;
use anyhow::{Context, bail};
use mamori_core::time::{SystemClock, rfc3339};
use mamori_core::{Clock, OrgId};
use mamori_oversight::Actor;
use mamori_store::{NewOrg, NewUser};
use serde::Serialize;

/// Organisations as a table: id, kind, sector (`-` for none), name. `admin org list`
/// and `report orgs` print the same.
pub(crate) fn org_table<'a>(
    rows: impl Iterator<Item = (OrgId, &'a str, Option<&'a str>, &'a str)>,
) -> String {
    let mut s = format!("{:>5}  {:<20} {:<12} NAME", "ID", "KIND", "SECTOR");
    for (id, kind, sector, name) in rows {
        s.push_str(&format!(
            "\n{:>5}  {:<20} {:<12} {name}",
            id,
            kind,
            sector.unwrap_or("-")
        ));
    }
    s
}

#[allow(clippy::print_stdout)]
fn emit<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).context("serialising output")?
        );
    } else {
        println!("{}", text(value));
    }
    Ok(())
}

pub(crate) async fn run(cfg: &MamoriConfig, cmd: AdminCommand, json: bool) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    let now = SystemClock.now();
    let mut tx = store.begin().await?;
    match cmd {
        AdminCommand::Org(OrgCommand::Add { kind, name, sector }) => {
            let org = tx.create_org(&NewOrg { kind, sector, name }, now).await?;
            emit(json, &org, |o| {
                format!("created organisation {} ({}, {:?})", o.id, o.kind, o.name)
            })?;
        }
        AdminCommand::Org(OrgCommand::List) => {
            let orgs = tx.orgs().await?;
            emit(json, &orgs, |orgs| {
                org_table(
                    orgs.iter()
                        .map(|o| (o.id, o.kind.slug(), o.sector.map(|s| s.slug()), &*o.name)),
                )
            })?;
        }
        AdminCommand::Org(OrgCommand::Profile {
            org,
            alias,
            domain,
            contact,
            range,
        }) => {
            let mut entries = Vec::new();
            for (kind, values) in [
                ("alias", alias),
                ("domain", domain),
                ("contact", contact),
                ("range", range),
            ] {
                for v in values {
                    let v = mamori_share::source::check_identifier(kind, &v)
                        .with_context(|| format!("--{kind}"))?;
                    entries.push((kind, v));
                }
            }
            if entries.is_empty() {
                bail!("name at least one --alias, --domain, --contact or --range");
            }
            let pairs: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
            tx.add_org_identifiers(org, &pairs, now).await?;
            let profile = tx.org_identifiers(&[org]).await?;
            emit(json, &profile_out(&profile), |p| {
                format!("organisation {org} now has {} profile entries", p.len())
            })?;
        }
        AdminCommand::Org(OrgCommand::Show { org }) => {
            let o = tx.org(org).await?;
            let profile = tx.org_identifiers(&[org]).await?;
            #[derive(Serialize)]
            struct Shown<'a> {
                org: &'a mamori_store::Org,
                profile: Vec<ProfileEntry<'a>>,
            }
            let shown = Shown {
                org: &o,
                profile: profile_out(&profile),
            };
            emit(json, &shown, |s| {
                let mut t = format!(
                    "{} {} ({}, {})",
                    s.org.id,
                    s.org.name,
                    s.org.kind.slug(),
                    s.org.sector.map(|x| x.slug()).unwrap_or("-")
                );
                for e in &s.profile {
                    t.push_str(&format!("\n  {:<8} {}", e.kind, e.value));
                }
                t
            })?;
        }
        AdminCommand::Org(OrgCommand::Client {
            org,
            provider,
            remove,
        }) => {
            if remove {
                tx.remove_client(provider, org).await?;
            } else {
                tx.add_client(provider, org, now).await?;
            }
            let clients = tx.clients(provider).await?;
            #[derive(Serialize)]
            struct Clients {
                provider: mamori_core::OrgId,
                clients: Vec<mamori_core::OrgId>,
            }
            emit(json, &Clients { provider, clients }, |c| {
                let verb = if remove { "is no longer" } else { "is now" };
                let list: Vec<String> = c.clients.iter().map(ToString::to_string).collect();
                format!(
                    "organisation {org} {verb} a client of {provider} (TLP:AMBER shared with {provider} reaches its clients); clients of {provider}: {}",
                    if list.is_empty() {
                        "none".to_owned()
                    } else {
                        list.join(", ")
                    }
                )
            })?;
        }
        AdminCommand::User(UserCommand::Add {
            org,
            name,
            role,
            clearance,
        }) => {
            let user = tx
                .create_user(
                    &NewUser {
                        org,
                        name,
                        role,
                        clearance,
                    },
                    now,
                )
                .await?;
            emit(json, &user, |u| {
                format!(
                    "created user {} ({:?}, {} of organisation {})",
                    u.id, u.name, u.role, u.org
                )
            })?;
        }
        AdminCommand::User(UserCommand::List) => {
            let users = tx.users().await?;
            emit(json, &users, |users| {
                let mut s = format!(
                    "{:>5}  {:>5}  {:<10} {:<12} NAME",
                    "ID", "ORG", "ROLE", "CLEARANCE"
                );
                for u in users {
                    s.push_str(&format!(
                        "\n{:>5}  {:>5}  {:<10} {:<12} {}",
                        u.id,
                        u.org,
                        u.role.slug(),
                        u.clearance.slug(),
                        u.name
                    ));
                }
                s
            })?;
        }
        AdminCommand::Token(TokenCommand::Issue { user, label, days }) => {
            let days = days.unwrap_or(cfg.server.token_lifetime_days);
            if !(1..=3650).contains(&days) {
                bail!("--days must be between 1 and 3650, not {days}");
            }
            let expires = now + chrono::Duration::days(i64::from(days));
            let (info, secret) = mamori_oversight::acts::issue_token(
                &mut tx,
                Actor::local_cli(),
                user,
                &label,
                expires,
                now,
            )
            .await?;
            tx.commit().await?;
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "issued token {} for user {}, expiring {}; the secret below is shown once:",
                    info.id,
                    info.user,
                    rfc3339(info.expires_at)
                );
            }
            #[derive(Serialize)]
            struct Issued<'a> {
                token: &'a mamori_store::TokenInfo,
                secret: &'a str,
            }
            return emit(
                json,
                &Issued {
                    token: &info,
                    secret: secret.expose(),
                },
                |i| i.secret.to_owned(),
            );
        }
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            let info =
                mamori_oversight::acts::revoke_token(&mut tx, Actor::local_cli(), id, now).await?;
            emit(json, &info, |t| {
                format!("revoked token {} of user {}", t.id, t.user)
            })?;
        }
        AdminCommand::Token(TokenCommand::List { user }) => {
            let tokens = tx.tokens(user).await?;
            emit(json, &tokens, |tokens| {
                let mut s = format!(
                    "{:>5}  {:>5}  {:<8} {:<24} LABEL",
                    "ID", "USER", "STATE", "EXPIRES"
                );
                for t in tokens {
                    let state = serde_json::to_value(t.state(now))
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    s.push_str(&format!(
                        "\n{:>5}  {:>5}  {:<8} {:<24} {}",
                        t.id,
                        t.user,
                        state,
                        rfc3339(t.expires_at),
                        t.label
                    ));
                }
                s
            })?;
        }
    }
    tx.commit().await?;
    store.close().await;
    Ok(())
}

/// One registered profile entry, as shown.
#[derive(Serialize)]
struct ProfileEntry<'a> {
    kind: &'a str,
    value: &'a str,
}

fn profile_out(p: &[mamori_store::OrgIdentifier]) -> Vec<ProfileEntry<'_>> {
    p.iter()
        .map(|e| ProfileEntry {
            kind: &e.kind,
            value: &e.value,
        })
        .collect()
}

/// Reads a period bound: an RFC 3339 time, or a date meaning 00:00 JST that day.
fn parse_bound(text: &str) -> anyhow::Result<mamori_core::time::Timestamp> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("{text:?} is neither an RFC 3339 time nor a date YYYY-MM-DD"))?;
    let midnight = date.and_hms_opt(0, 0, 0).context("midnight exists")?;
    midnight
        .and_local_timezone(mamori_core::time::JST)
        .single()
        .map(|t| t.with_timezone(&chrono::Utc))
        .context("JST has no gaps")
}

/// `mamori audit report`: counts per kind of act in `[from, to)` (CI-9).
pub(crate) async fn report(
    cfg: &MamoriConfig,
    from: &str,
    to: &str,
    json: bool,
) -> anyhow::Result<()> {
    let (from_t, to_t) = (parse_bound(from)?, parse_bound(to)?);
    if from_t >= to_t {
        bail!("--from must be before --to");
    }
    let store = open_store(cfg).await?;
    let mut tx = store.begin().await?;
    let counts = mamori_oversight::counts(&mut tx, from_t, to_t).await?;
    tx.commit().await?;
    store.close().await;
    #[derive(Serialize)]
    struct Report<'a> {
        from: String,
        to: String,
        counts: &'a std::collections::BTreeMap<String, u64>,
    }
    let report = Report {
        from: rfc3339(from_t),
        to: rfc3339(to_t),
        counts: &counts,
    };
    emit(json, &report, |r| {
        let mut s = format!("acts recorded from {} to {}", r.from, r.to);
        for (kind, n) in r.counts {
            s.push_str(&format!("\n{kind:<20} {n:>10}"));
        }
        s
    })
}
