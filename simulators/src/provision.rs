//! Provisioning: turns a [`Plan`] into records through geoward's public API, as an admin and
//! officers would, and returns the ids, tokens and device credentials the run needs.
//!
//! Who does what: the admin (an existing account) creates the accounts, registers devices,
//! creates supervisees and assigns devices; the run's supervisor draws the shared zones
//! (jurisdiction, schools) and every other zone no person owns; each person's officer draws
//! their personal zones (`Home(i)`, `Victim(i)`, `LeaveDestination(i)`), attaches their zones
//! and records their leave and monitoring order.
//!
//! # Invariants
//! - Every name is unique to the run: usernames `sim-{run_id}-supervisor`,
//!   `sim-{run_id}-officer-{k}`, device serials `sim-{run_id}-{i}`, supervisee and zone names
//!   prefixed `sim-{run_id}`; the password is random per run unless the caller gives one
//!   ([`provision_with_password`]).
//! - Nothing is evaluated before its rules exist, and nobody is under an order for long without
//!   a device: phase 1 makes every person's device, record, zones, attachments and leave; phase
//!   2 then gives each person their monitoring order and, last, their device. An order starts
//!   the lost-contact clock (geoward seeds a deadline for everyone under an order), so orders
//!   are created as late as possible, just before the device loops start.
//! - A retried create whose first attempt may have reached the server is not doubled where
//!   geoward's 409 means "exists" (accounts, orders, leave); a device whose token was lost with
//!   the reply is registered again under a new serial (`…-r1`). A retried supervisee or zone
//!   create may leave an orphan (no order, not attached), which geoward never evaluates.
//! - `progress(done, total)` counts person-phases: each person is reported twice (records and
//!   rules done; order and device done), `total` = 2 × people.
//! - Errors name the person index (or the setup step) and the call; the [`ApiError`] is the
//!   `source` (print with `{:#}` or walk the chain).

use std::collections::HashMap;

use futures_util::{stream, StreamExt};
use rand::distributions::{Alphanumeric, DistString};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{Api, ApiError, Call, Conflict, Reply};
use crate::plan::{PersonPlan, Plan, ZoneRef, ZoneSpec};

mod requests;

use requests::{account_body, leave_body, order_body, supervisee_body, zone_body};
pub use requests::{check_plan, check_run_id, drawer, serial, username};

/// The legal ground given to every simulated order (one of the five, art. 29).
pub const ORDER_BASIS: &str = "prohibition_order_violation";
/// Attachments of one person in flight at once.
const ATTACH_FANOUT: usize = 4;
/// Re-registrations of a device whose token was lost with a reply.
const DEVICE_REREGISTRATIONS: usize = 3;

/// A logged-in account of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub token: String,
}

/// A registered device: its id and the token it authenticates with on `/v1/device/ws`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceCredentials {
    pub id: Uuid,
    pub serial: String,
    pub token: String,
}

/// What provisioning made, indexed like the plan.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub run_id: String,
    pub supervisor: Account,
    /// By caseload index.
    pub officers: Vec<Account>,
    /// By person index.
    pub supervisees: Vec<Uuid>,
    /// By person index.
    pub devices: Vec<DeviceCredentials>,
    /// Every zone of the plan.
    pub zones: HashMap<ZoneRef, Uuid>,
}

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("run id {0:?}: use 1 or more letters, digits, '-', '_' or '.', short enough for usernames of at most 64 characters")]
    RunId(String),
    #[error("the plan cannot be provisioned: {0}")]
    Plan(String),
    /// A call before the people (admin login, accounts, shared zones).
    #[error("{call}")]
    Setup {
        call: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error("person {person}: {call}")]
    Person {
        person: usize,
        call: String,
        #[source]
        source: Box<ApiError>,
    },
}

#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

/// What phase 1 made for one person.
struct Records {
    supervisee: Uuid,
    device: DeviceCredentials,
    zones: Vec<(ZoneRef, Uuid)>,
}

/// Provisions `plan` (see the module doc); `admin` is an existing admin's (username, password).
/// The run's accounts get a random password.
pub async fn provision(
    api: &Api,
    admin: (&str, &str),
    plan: &Plan,
    run_id: &str,
    concurrency: usize,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<Provisioned, ProvisionError> {
    let password = random_password();
    provision_with_password(api, admin, plan, run_id, &password, concurrency, progress).await
}

/// A password for the run's accounts nobody needs to type: 24 random letters and digits.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
}

/// [`provision`] with the run's supervisor and officers given `password` (so that a person can
/// log in as one of them, e.g. in a demo).
pub async fn provision_with_password(
    api: &Api,
    admin: (&str, &str),
    plan: &Plan,
    run_id: &str,
    password: &str,
    concurrency: usize,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<Provisioned, ProvisionError> {
    check_run_id(run_id, plan.settings.officers)?;
    check_plan(plan)?;
    let concurrency = concurrency.max(1);
    let setup = |call: &str| {
        let call = call.to_owned();
        move |source| ProvisionError::Setup {
            call,
            source: Box::new(source),
        }
    };
    let admin = api
        .login(admin.0, admin.1)
        .await
        .map_err(setup("log in as the admin"))?;

    let supervisor = account(api, &admin, run_id, None, password).await?;
    let officers: Vec<Account> = stream::iter(0..plan.settings.officers)
        .map(|k| account(api, &admin, run_id, Some(k), password))
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;

    let people = plan.people.len();
    let by_supervisor: Vec<&ZoneSpec> = plan
        .zones
        .iter()
        .filter(|z| drawer(z, people).is_none())
        .collect();
    let mut zones: HashMap<ZoneRef, Uuid> = stream::iter(by_supervisor)
        .map(|spec| async {
            let id = draw(api, &supervisor.token, spec, run_id)
                .await
                .map_err(setup(&format!("draw zone {:?}", spec.zone)))?;
            Ok::<_, ProvisionError>((spec.zone, id))
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;

    let total = 2 * people;
    progress(0, total);
    let mut done = 0;
    let mut records: Vec<Option<Records>> = (0..people).map(|_| None).collect();
    {
        let (shared, officers) = (&zones, &officers);
        let mut phase1 = stream::iter(&plan.people)
            .map(|p| rules(api, &admin, &officers[p.officer], plan, p, shared, run_id))
            .buffer_unordered(concurrency);
        while let Some(made) = phase1.next().await {
            let (i, made) = made?;
            records[i] = Some(made);
            done += 1;
            progress(done, total);
        }
    }
    let records: Vec<Records> = records.into_iter().flatten().collect();

    {
        let mut phase2 = stream::iter(plan.people.iter().zip(&records))
            .map(|(p, r)| {
                let officer = &officers[p.officer].token;
                supervise(api, &admin, officer, plan, p.index, r, run_id)
            })
            .buffer_unordered(concurrency);
        while let Some(result) = phase2.next().await {
            result?;
            done += 1;
            progress(done, total);
        }
    }

    let mut supervisees = Vec::with_capacity(people);
    let mut devices = Vec::with_capacity(people);
    for r in records {
        zones.extend(r.zones);
        supervisees.push(r.supervisee);
        devices.push(r.device);
    }
    Ok(Provisioned {
        run_id: run_id.to_owned(),
        supervisor,
        officers,
        supervisees,
        devices,
        zones,
    })
}

/// Creates an account (`None`: the supervisor, `Some(k)`: officer k) and logs in as it.
async fn account(
    api: &Api,
    admin: &str,
    run_id: &str,
    officer: Option<usize>,
    password: &str,
) -> Result<Account, ProvisionError> {
    let username = username(run_id, officer);
    let body = account_body(&username, password, officer.is_some(), run_id);
    let call = Call::new(Method::POST, "/v1/officers", StatusCode::CREATED)
        .bearer(admin)
        .json(body)
        .conflict(Conflict::ExistsIfRetried);
    let err = |what: &str| {
        let call = format!("{what} {username}");
        move |source| ProvisionError::Setup {
            call,
            source: Box::new(source),
        }
    };
    api.send::<Value>(&call)
        .await
        .map_err(err("create account"))?;
    // The id comes from the login, which also works when a lost reply left only a 409.
    let session = api
        .session(&username, password)
        .await
        .map_err(err("log in as"))?;
    Ok(Account {
        id: session.officer_id,
        username,
        token: session.token,
    })
}

/// Phase 1 for one person: device, record, personal zones, attachments, leave.
async fn rules(
    api: &Api,
    admin: &str,
    officer: &Account,
    plan: &Plan,
    p: &PersonPlan,
    shared: &HashMap<ZoneRef, Uuid>,
    run_id: &str,
) -> Result<(usize, Records), ProvisionError> {
    let i = p.index;
    let fail = |call: String| {
        move |source| ProvisionError::Person {
            person: i,
            call,
            source: Box::new(source),
        }
    };
    let device = register(api, admin, run_id, i)
        .await
        .map_err(fail("register device".into()))?;

    let call = Call::new(Method::POST, "/v1/supervisees", StatusCode::CREATED)
        .bearer(admin)
        .json(supervisee_body(
            i,
            &p.timezone,
            p.lost_contact_after_s,
            officer.id,
            run_id,
        ));
    let supervisee = created(api.send(&call).await).map_err(fail("create supervisee".into()))?;
    let base = format!("/v1/supervisees/{supervisee}");

    let mut zones = Vec::new();
    for spec in plan
        .zones
        .iter()
        .filter(|z| drawer(z, plan.people.len()) == Some(i))
    {
        let id = draw(api, &officer.token, spec, run_id)
            .await
            .map_err(fail(format!("draw zone {:?}", spec.zone)))?;
        zones.push((spec.zone, id));
    }

    let own: HashMap<ZoneRef, Uuid> = zones.iter().copied().collect();
    let attachments = p.zones.iter().map(|zone| {
        // check_plan made sure every attached zone is shared or the person's own.
        let id = shared.get(zone).or_else(|| own.get(zone)).copied();
        let (base, fail) = (&base, &fail);
        async move {
            let id = id.unwrap_or_default();
            let call = Call::new(
                Method::PUT,
                format!("{base}/zones/{id}"),
                StatusCode::NO_CONTENT,
            )
            .bearer(&officer.token);
            api.send::<()>(&call)
                .await
                .map_err(fail(format!("attach zone {zone:?}")))
        }
    });
    let mut attachments = stream::iter(attachments).buffer_unordered(ATTACH_FANOUT);
    while let Some(result) = attachments.next().await {
        result?;
    }

    if let Some(leave) = &p.leave {
        let call = Call::new(Method::POST, format!("{base}/leaves"), StatusCode::CREATED)
            .bearer(&officer.token)
            .json(leave_body(leave))
            .conflict(Conflict::ExistsIfRetried);
        api.send::<Value>(&call)
            .await
            .map_err(fail("create leave".into()))?;
    }
    Ok((
        i,
        Records {
            supervisee,
            device,
            zones,
        },
    ))
}

/// Phase 2 for one person: the monitoring order, then the device.
async fn supervise(
    api: &Api,
    admin: &str,
    officer: &str,
    plan: &Plan,
    i: usize,
    r: &Records,
    run_id: &str,
) -> Result<(), ProvisionError> {
    let fail = |call: &str| {
        let call = call.to_owned();
        move |source| ProvisionError::Person {
            person: i,
            call,
            source: Box::new(source),
        }
    };
    let base = format!("/v1/supervisees/{}", r.supervisee);
    let call = Call::new(Method::POST, format!("{base}/orders"), StatusCode::CREATED)
        .bearer(officer)
        .json(order_body(plan.order_starts, plan.order_ends, run_id))
        .conflict(Conflict::ExistsIfRetried);
    api.send::<Value>(&call)
        .await
        .map_err(fail("create monitoring order"))?;
    let call = Call::new(Method::PUT, format!("{base}/device"), StatusCode::OK)
        .bearer(admin)
        .json(json!({ "device_id": r.device.id }));
    api.send::<Value>(&call)
        .await
        .map_err(fail("assign device"))?;
    Ok(())
}

/// `POST /v1/devices`; a 409 after a lost reply means the token is gone: a new serial.
async fn register(
    api: &Api,
    admin: &str,
    run_id: &str,
    i: usize,
) -> Result<DeviceCredentials, ApiError> {
    let mut attempt = 0;
    loop {
        let call = Call::new(Method::POST, "/v1/devices", StatusCode::CREATED)
            .bearer(admin)
            .json(json!({ "serial": serial(run_id, i, attempt) }))
            .conflict(if attempt < DEVICE_REREGISTRATIONS {
                Conflict::ExistsIfRetried
            } else {
                Conflict::Fail
            });
        match api.send::<DeviceCredentials>(&call).await? {
            Reply::Ok(device) => return Ok(device),
            Reply::Conflict => attempt += 1,
        }
    }
}

/// `POST /v1/zones`: the new zone's id.
async fn draw(api: &Api, token: &str, spec: &ZoneSpec, run_id: &str) -> Result<Uuid, ApiError> {
    let call = Call::new(Method::POST, "/v1/zones", StatusCode::CREATED)
        .bearer(token)
        .json(zone_body(spec, run_id));
    created(api.send(&call).await)
}

fn created(reply: Result<Reply<Created>, ApiError>) -> Result<Uuid, ApiError> {
    match reply? {
        Reply::Ok(c) => Ok(c.id),
        Reply::Conflict => Ok(Uuid::nil()), // never: these calls use Conflict::Fail
    }
}

#[cfg(test)]
#[path = "provision_tests.rs"]
mod tests;
