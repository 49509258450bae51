//! Prepared zones, cached in the process.
//!
//! Preparing a zone (projecting it and indexing its edges) costs far more than classifying a
//! fix against it, so each zone is prepared once and kept, keyed by its id and `updated_at`:
//! a zone that changed is prepared again on its next use. The cache is bounded; when full it
//! forgets everything and refills from use, which keeps it simple and its memory predictable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::eval::PreparedZone;
use crate::store::zones::Zone;
use crate::store::StoreError;

/// A prepared zone and the `updated_at` of the row it was prepared from.
type Entry = (DateTime<Utc>, Arc<PreparedZone>);

pub struct ZoneCache {
    capacity: usize,
    zones: Mutex<HashMap<Uuid, Entry>>,
}

impl ZoneCache {
    pub fn new(capacity: usize) -> ZoneCache {
        ZoneCache {
            capacity: capacity.max(1),
            zones: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, zone: &Zone) -> Option<Arc<PreparedZone>> {
        let zones = self.zones.lock().ok()?;
        zones
            .get(&zone.id)
            .filter(|(version, _)| *version == zone.updated_at)
            .map(|(_, prepared)| prepared.clone())
    }

    /// The prepared form of `zone`, preparing it (on the blocking pool) when it is not cached
    /// or has changed since.
    pub async fn get(&self, zone: Zone) -> Result<Arc<PreparedZone>, StoreError> {
        if let Some(prepared) = self.cached(&zone) {
            return Ok(prepared);
        }
        let (id, version) = (zone.id, zone.updated_at);
        let prepared = tokio::task::spawn_blocking(move || zone.prepare())
            .await
            .map_err(|e| StoreError::Malformed(format!("preparing zone {id} failed: {e}")))??;
        let prepared = Arc::new(prepared);
        if let Ok(mut zones) = self.zones.lock() {
            if zones.len() >= self.capacity {
                zones.clear();
            }
            zones.insert(id, (version, prepared.clone()));
        }
        Ok(prepared)
    }

    pub fn len(&self) -> usize {
        self.zones.lock().map(|z| z.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(id: Uuid, updated_at: DateTime<Utc>) -> Zone {
        Zone {
            id,
            name: "home".into(),
            kind: "inclusion".into(),
            geometry: serde_json::json!({"type": "Circle", "coordinates": [114.65, 33.62], "radius_m": 100.0}),
            source_geometry: serde_json::Value::Null,
            source_datum: "wgs84".into(),
            schedule: serde_json::json!([]),
            buffer_m: 0.0,
            confirm_fixes: 2,
            shared: false,
            created_by: None,
            created_at: updated_at,
            updated_at,
        }
    }

    #[tokio::test]
    async fn a_zone_is_prepared_once_until_it_changes() {
        let cache = ZoneCache::new(10);
        let id = Uuid::new_v4();
        let t0 = Utc::now();
        let first = cache.get(zone(id, t0)).await.unwrap();
        let again = cache.get(zone(id, t0)).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let changed = cache
            .get(zone(id, t0 + chrono::Duration::seconds(1)))
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_full_cache_starts_over_instead_of_growing() {
        let cache = ZoneCache::new(2);
        for _ in 0..5 {
            cache.get(zone(Uuid::new_v4(), Utc::now())).await.unwrap();
        }
        assert!(cache.len() <= 2);
    }
}
