//! A device's behaviour over a run: at each tick of its reporting clock, which reports it sends,
//! buffers or holds back, following the supervisee's day ([`movement::Person`]) and the
//! device-side part of an injected scenario (strap opened, battery falling, an outlier fix,
//! silence, an offline stretch uploaded as a batch, sparse fixes around a pass).
//!
//! Pure and deterministic: the caller passes the tick time (the device loop reads the clock);
//! the same script ticked at the same times yields the same reports, seqs included.
//!
//! # Invariants
//! - seqs start at 1 and increase by one with every report produced (sent or buffered), so a
//!   device never reuses one;
//! - after [`Action::GoSilent`] every later tick yields nothing;
//! - a tick inside the offline window yields only [`Action::Buffer`]; the first tick after it
//!   yields [`Action::Flush`] before anything else, so buffered reports go out oldest first;
//! - the strap, once opened, stays open in every later report; the battery only falls.

use chrono::{DateTime, Utc};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::ledger::Window;
use crate::movement::{FixSource, Person};

/// How far the outlier fix of a location jump lies from the true position (north-east), metres.
pub const JUMP_OFFSET_M: f64 = 80_000.0;

/// One report as the device protocol carries it (`docs/device-protocol.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    /// `None` for a `status` report.
    pub position: Option<Position>,
    pub bat: u8,
    pub strap_open: bool,
}

/// A fix's position part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
    pub acc_m: f64,
    pub src: FixSource,
}

impl Report {
    /// The report as a JSON object (a `fix` or a `status`), ready to send alone or as a batch
    /// item. `ts` carries milliseconds, coordinates seven decimals (about 1 cm).
    pub fn to_json(&self) -> String {
        let ts = self.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let strap = if self.strap_open { "open" } else { "closed" };
        match &self.position {
            Some(p) => format!(
                r#"{{"type":"fix","seq":{},"ts":"{ts}","lat":{:.7},"lon":{:.7},"acc":{:.1},"src":"{}","bat":{},"strap":"{strap}"}}"#,
                self.seq,
                p.lat,
                p.lon,
                p.acc_m,
                p.src.as_str(),
                self.bat
            ),
            None => format!(
                r#"{{"type":"status","seq":{},"ts":"{ts}","bat":{},"strap":"{strap}"}}"#,
                self.seq, self.bat
            ),
        }
    }
}

/// What the device does at a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this report now (a `fix` or `status` frame).
    Send(Report),
    /// Out of coverage: keep this report for later.
    Buffer(Report),
    /// Back in coverage: send everything buffered, oldest first, as `batch` frames.
    Flush,
    /// Stop reporting for good and close the connection (going silent).
    GoSilent,
}

/// The device-side plan of one supervisee's tag. Times are device times (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevicePlan {
    /// Seeds the fix noise (independent of the person's own seed).
    pub noise_seed: u64,
    /// Battery at the start of the run, percent.
    pub battery_start_pct: u8,
    /// From this time on the battery reads `battery_low_pct`.
    pub battery_drop_at: Option<DateTime<Utc>>,
    pub battery_low_pct: u8,
    /// At the first tick at or after this, a `status` with the strap open goes first; every
    /// later report has the strap open.
    pub strap_open_at: Option<DateTime<Utc>>,
    /// The first tick at or after this sends an outlier fix [`JUMP_OFFSET_M`] away.
    pub jump_at: Option<DateTime<Utc>>,
    /// From the first tick at or after this, nothing is sent and the connection is closed.
    pub silent_from: Option<DateTime<Utc>>,
    /// Ticks inside are buffered; the first tick after flushes the buffer.
    pub offline: Option<Window>,
    /// Ticks inside send nothing at all (the tag sleeps: sparse fixes).
    pub quiet: Vec<Window>,
}

impl DevicePlan {
    /// An ordinary tag: no scenario.
    pub fn ordinary(noise_seed: u64, battery_start_pct: u8) -> DevicePlan {
        DevicePlan {
            noise_seed,
            battery_start_pct,
            battery_drop_at: None,
            battery_low_pct: battery_start_pct,
            strap_open_at: None,
            jump_at: None,
            silent_from: None,
            offline: None,
            quiet: Vec::new(),
        }
    }
}

/// A running device script: the plan, the person it is worn by, and its progress.
#[derive(Debug, Clone)]
pub struct DeviceScript {
    plan: DevicePlan,
    person: Person,
    rng: StdRng,
    next_seq: u64,
    strap_open: bool,
    jumped: bool,
    silent: bool,
    buffering: bool,
}

impl DeviceScript {
    pub fn new(person: Person, plan: DevicePlan) -> DeviceScript {
        DeviceScript {
            rng: StdRng::seed_from_u64(plan.noise_seed),
            plan,
            person,
            next_seq: 1,
            strap_open: false,
            jumped: false,
            silent: false,
            buffering: false,
        }
    }

    pub fn plan(&self) -> &DevicePlan {
        &self.plan
    }

    pub fn person(&self) -> &Person {
        &self.person
    }

    /// Whether the device has gone silent for good.
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// What to do at tick time `t` (ticks must not go backwards).
    pub fn tick(&mut self, t: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.silent {
            return actions;
        }
        if self.plan.silent_from.is_some_and(|at| t >= at) {
            self.silent = true;
            actions.push(Action::GoSilent);
            return actions;
        }
        let offline = self.plan.offline.is_some_and(|w| w.contains(t));
        if self.buffering && !offline {
            self.buffering = false;
            actions.push(Action::Flush);
        }
        self.buffering = offline;
        if self.plan.quiet.iter().any(|w| w.contains(t)) {
            return actions;
        }
        let bat = match self.plan.battery_drop_at {
            Some(at) if t >= at => self.plan.battery_low_pct,
            _ => self.plan.battery_start_pct,
        };
        let out = |r: Report| {
            if offline {
                Action::Buffer(r)
            } else {
                Action::Send(r)
            }
        };
        if !self.strap_open && self.plan.strap_open_at.is_some_and(|at| t >= at) {
            self.strap_open = true;
            let status = self.report(t, None, bat);
            actions.push(out(status));
        }
        let fix = self.person.fix_at(t, &mut self.rng);
        let mut position = Position {
            lat: fix.lat,
            lon: fix.lon,
            acc_m: fix.acc_m,
            src: fix.src,
        };
        if !self.jumped && self.plan.jump_at.is_some_and(|at| t >= at) {
            self.jumped = true;
            let d = JUMP_OFFSET_M / std::f64::consts::SQRT_2;
            let (lat, lon) = crate::geo::offset(fix.lat, fix.lon, d, d);
            position = Position {
                lat,
                lon,
                acc_m: 10.0,
                src: FixSource::Gps,
            };
        }
        let report = self.report(t, Some(position), bat);
        actions.push(out(report));
        actions
    }

    fn report(&mut self, ts: DateTime<Utc>, position: Option<Position>, bat: u8) -> Report {
        let seq = self.next_seq;
        self.next_seq += 1;
        Report {
            seq,
            ts,
            position,
            bat,
            strap_open: self.strap_open,
        }
    }
}
