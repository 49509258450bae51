//! Each supervisee's rules, ready for the engine, cached per node.
//!
//! A supervisee's rules are their time zone, officer, lost-contact interval, personal zones,
//! shared zones (as one [`ZoneLayer`], shared between everyone attached to the same set), orders
//! and leave. They are loaded for a whole batch of supervisees in four queries
//! ([`crate::store::rules`]) and kept for `alerts.rules_refresh`; an officer's change drops the
//! entry on every node at once ([`RulesCache::forget`], announced on the bus).
//!
//! Invariant: the cache is bounded; when full it forgets everything and refills from use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::supervision::{parse_timezone, Period};
use crate::eval::{Leave, PreparedZone, Rules, Settings, ZoneLayer};
use crate::metrics::StoreCall;
use crate::store::{self, StoreError};
use crate::zone_cache::ZoneCache;

/// One supervisee's rules, owned.
#[derive(Debug)]
pub struct SuperviseeRules {
    pub id: Uuid,
    pub officer_id: Uuid,
    pub timezone: chrono_tz::Tz,
    pub lost_contact_after: chrono::Duration,
    pub zones: Vec<Arc<PreparedZone>>,
    pub shared: Option<Arc<ZoneLayer>>,
    pub orders: Vec<Period>,
    pub leaves: Vec<Leave>,
}

impl SuperviseeRules {
    pub fn rules<'a>(&'a self, settings: &'a Settings) -> Rules<'a> {
        Rules {
            timezone: self.timezone,
            zones: &self.zones,
            shared: self.shared.as_deref(),
            orders: &self.orders,
            leaves: &self.leaves,
            settings,
        }
    }

    /// Whether a monitoring order covers `at`.
    pub fn under_order(&self, at: DateTime<Utc>) -> bool {
        self.orders.iter().any(|o| o.contains(at))
    }

    /// A zone of this supervisee (personal or shared), by id.
    pub fn zone(&self, id: Uuid) -> Option<&Arc<PreparedZone>> {
        let shared = self.shared.as_deref().map_or(&[][..], |l| l.zones());
        self.zones.iter().chain(shared).find(|z| z.id() == id)
    }
}

/// Entries kept per node.
const CAPACITY: usize = 200_000;

pub struct RulesCache {
    db: PgPool,
    zones: Arc<ZoneCache>,
    refresh: Duration,
    default_confirm_fixes: u32,
    entries: Mutex<HashMap<Uuid, (Instant, Arc<SuperviseeRules>)>>,
    /// Shared layers by their sorted zone ids.
    layers: Mutex<HashMap<Vec<Uuid>, Arc<ZoneLayer>>>,
    /// Times the loads from PostgreSQL, when set ([`RulesCache::measured`]).
    loads: Option<StoreCall>,
}

impl RulesCache {
    pub fn new(
        db: PgPool,
        zones: Arc<ZoneCache>,
        refresh: Duration,
        default_confirm_fixes: u32,
    ) -> RulesCache {
        RulesCache {
            db,
            zones,
            refresh,
            default_confirm_fixes,
            entries: Mutex::new(HashMap::new()),
            layers: Mutex::new(HashMap::new()),
            loads: None,
        }
    }

    /// Times every load from PostgreSQL with `loads`.
    pub fn measured(mut self, loads: StoreCall) -> RulesCache {
        self.loads = Some(loads);
        self
    }

    /// Drops a supervisee's cached rules (their zones, orders, leave or record changed).
    pub fn forget(&self, id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&id);
        }
    }

    /// Drops every cached entry (announcements may have been missed).
    pub fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// The rules of each supervisee in `ids` that exists, loading the missing or expired ones.
    pub async fn get_many(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<HashMap<Uuid, Arc<SuperviseeRules>>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        if let Ok(entries) = self.entries.lock() {
            for id in ids {
                match entries.get(id) {
                    Some((at, rules)) if at.elapsed() < self.refresh => {
                        found.insert(*id, rules.clone());
                    }
                    _ => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let loaded = self.load(&missing, now).await?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() + loaded.len() > CAPACITY {
                entries.clear();
            }
            let at = Instant::now();
            for rules in &loaded {
                entries.insert(rules.id, (at, rules.clone()));
            }
        }
        found.extend(loaded.into_iter().map(|r| (r.id, r)));
        Ok(found)
    }

    async fn load(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Arc<SuperviseeRules>>, StoreError> {
        let load = store::rules::load(&self.db, ids, now);
        let rows = match &self.loads {
            Some(loads) => loads.time(load).await?,
            None => load.await?,
        };
        let mut personal: HashMap<Uuid, Vec<Arc<PreparedZone>>> = HashMap::new();
        let mut shared: HashMap<Uuid, Vec<Arc<PreparedZone>>> = HashMap::new();
        for attached in rows.zones {
            let is_shared = attached.zone.shared;
            let prepared = self.zones.get(attached.zone).await?;
            let into = if is_shared {
                &mut shared
            } else {
                &mut personal
            };
            into.entry(attached.supervisee_id)
                .or_default()
                .push(prepared);
        }
        let mut orders: HashMap<Uuid, Vec<Period>> = HashMap::new();
        for o in rows.orders {
            orders.entry(o.supervisee_id).or_default().push(Period {
                starts_at: o.starts_at,
                ends_at: o.ends_at,
            });
        }
        let mut leaves: HashMap<Uuid, Vec<Leave>> = HashMap::new();
        for l in rows.leaves {
            let destination = match l.destination {
                Some(geometry) => Some(self.destination(l.id, geometry).await?),
                None => None,
            };
            leaves.entry(l.supervisee_id).or_default().push(Leave {
                period: Period {
                    starts_at: l.starts_at,
                    ends_at: l.ends_at,
                },
                destination,
            });
        }
        let mut out = Vec::with_capacity(rows.supervisees.len());
        for s in rows.supervisees {
            let timezone = parse_timezone(&s.timezone).map_err(|e| {
                StoreError::Malformed(format!("supervisee {} time zone: {e}", s.id))
            })?;
            out.push(Arc::new(SuperviseeRules {
                id: s.id,
                officer_id: s.officer_id,
                timezone,
                lost_contact_after: chrono::Duration::seconds(i64::from(
                    s.lost_contact_after_s.max(1),
                )),
                zones: personal.remove(&s.id).unwrap_or_default(),
                shared: shared.remove(&s.id).map(|z| self.layer(z)),
                orders: orders.remove(&s.id).unwrap_or_default(),
                leaves: leaves.remove(&s.id).unwrap_or_default(),
            }));
        }
        Ok(out)
    }

    /// The one layer for this set of shared zones.
    fn layer(&self, mut zones: Vec<Arc<PreparedZone>>) -> Arc<ZoneLayer> {
        zones.sort_by_key(|z| z.id());
        let key: Vec<Uuid> = zones.iter().map(|z| z.id()).collect();
        let Ok(mut layers) = self.layers.lock() else {
            return Arc::new(ZoneLayer::new(zones));
        };
        if let Some(layer) = layers.get(&key) {
            // Same ids; the zones themselves may have been prepared again since.
            if layer
                .zones()
                .iter()
                .zip(&zones)
                .all(|(a, b)| Arc::ptr_eq(a, b))
            {
                return layer.clone();
            }
        }
        if layers.len() >= 10_000 {
            layers.clear();
        }
        let layer = Arc::new(ZoneLayer::new(zones));
        layers.insert(key, layer.clone());
        layer
    }

    /// A leave destination as an inclusion zone, always in force during the leave.
    async fn destination(
        &self,
        leave_id: Uuid,
        geometry: serde_json::Value,
    ) -> Result<Arc<PreparedZone>, StoreError> {
        let zone = store::zones::Zone {
            id: leave_id,
            name: String::new(),
            kind: "inclusion".into(),
            source_geometry: geometry.clone(),
            geometry,
            source_datum: "wgs84".into(),
            schedule: serde_json::json!([]),
            buffer_m: 0.0,
            confirm_fixes: i32::try_from(self.default_confirm_fixes).unwrap_or(2),
            shared: false,
            created_by: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        self.zones.get(zone).await
    }
}
