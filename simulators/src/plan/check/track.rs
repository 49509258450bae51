//! The track of one person against every zone they are given: samples at every evaluated
//! tick (and up to `lag` later), the straight segments between fixes, and runs of possibly
//! uncertain fixes (near a border, or cell fixes) long enough for `no_location`.

use std::collections::HashMap;

use crate::geo::LatLon;
use crate::plan::clock::{etc_offset_h, ms, schedule_intervals, Ticks};
use crate::plan::pass::PASS_KMH;
use crate::plan::scenarios::Kind;
use crate::plan::zones::{route_segments, Shape};
use crate::plan::{
    PersonPlan, ZoneRef, ZoneSpec, ACC_MAX_M, CELL_ACC_MAX_M, GPS_ACC_MAX_M, MARGIN_M,
};
use crate::script::{Action, DeviceScript};

use super::zone::{contains, minus, Spans, Zone};
use super::Checker;

impl Checker {
    /// The track and tag of `p` against their zones (`personal`: their home and victim's home).
    pub fn person(&self, p: &PersonPlan, personal: &[ZoneSpec]) -> Vec<String> {
        let kind = Kind::of(&p.scenario.scenario);
        let who = format!("supervisee {} ({})", p.index, kind.name());
        let mut errs = Vec::new();
        if p.officer >= self.s.officers {
            errs.push(format!("{who}: officer {} out of range", p.officer));
        }
        let Some(offset_h) = etc_offset_h(&p.timezone) else {
            errs.push(format!(
                "{who}: time zone {:?} is not Etc/GMT±N",
                p.timezone
            ));
            return errs;
        };
        self.device(p, kind, &who, &mut errs);

        let ticks = Ticks::of(&self.s, self.start, p.index);
        let (i, lag) = (ticks.interval_ms(), self.s.lag.num_milliseconds().max(0));
        let span_to = ms(self.end) + lag;
        let quiet: Spans = p
            .device
            .quiet
            .iter()
            .map(|w| (ms(w.from), ms(w.to)))
            .collect();
        // Longest time between two fixes that may both be sent.
        let gap = i + lag + quiet.iter().map(|(a, b)| b - a + i).max().unwrap_or(0);
        let excursions = p.person.excursions();
        // A little faster than the fastest leg (passes run at 40 km/h), for rounding.
        let v = if excursions.is_empty() {
            p.person.mode().speed_mps()
        } else {
            p.person.mode().speed_mps().max(PASS_KMH / 3.6)
        } * 1.01
            + 0.1;
        let route = route_segments(&p.person);
        let legs: Vec<(LatLon, LatLon)> = excursions
            .iter()
            .flat_map(|e| {
                [
                    (e.depart_from, e.arrive_at),
                    (e.arrive_at, e.leave_from),
                    (e.leave_from, e.rejoin_at),
                ]
            })
            .collect();
        let exc_spans: Spans = excursions
            .iter()
            .map(|e| (ms(e.depart) - gap, ms(e.rejoin) + gap + 1))
            .collect();
        let near_thr = 1.6 * GPS_ACC_MAX_M + 1.0 + v * lag as f64 / 1000.0;
        let drift = v * gap as f64 / 1000.0;
        let cells = p.person.poor_fix_share() > 0.0;

        // Every zone in force at some time of the run, with its spans in force.
        let mut zones: Vec<(ZoneRef, Zone, Spans)> = Vec::new();
        let leave = p.leave.as_ref().map(|l| (ms(l.starts_at), ms(l.ends_at)));
        for r in &p.zones {
            let zone = match personal.iter().find(|z| z.zone == *r) {
                Some(spec) => Zone::of(spec),
                None => self
                    .shared
                    .get(r)
                    .cloned()
                    .ok_or_else(|| format!("zone {r:?} not drawn")),
            };
            let zone = match zone {
                Ok(z) => z,
                Err(e) => {
                    errs.push(format!("{who}: {e}"));
                    continue;
                }
            };
            let mut spans: Spans = if zone.schedule.is_none() {
                vec![(ms(self.start), span_to + 1)]
            } else {
                let to = crate::plan::clock::from_ms(span_to);
                match schedule_intervals(zone.schedule.as_ref(), offset_h, self.start, to) {
                    Ok(v) => v.into_iter().map(|(a, b)| (ms(a), ms(b))).collect(),
                    Err(e) => {
                        errs.push(format!("{who}: zone {r:?}: {e}"));
                        continue;
                    }
                }
            };
            if let (false, Some(cut)) = (zone.exclusion, leave) {
                spans = minus(&spans, cut);
            }
            zones.push((*r, zone, spans));
        }
        if let Some(l) = &p.leave {
            match l.destination.as_ref().and_then(Shape::from_geometry) {
                Some(shape) => zones.push((
                    ZoneRef::LeaveDestination(p.index),
                    Zone {
                        shape,
                        exclusion: false,
                        schedule: None,
                    },
                    vec![(ms(l.starts_at), ms(l.ends_at))],
                )),
                None if l.destination.is_some() => {
                    errs.push(format!("{who}: unreadable leave destination"));
                }
                None => {}
            }
        }

        // The fast path: a zone every piece of the track keeps clear of, by the requirement,
        // the uncertainty band and the drift between two fixes, needs no sampling.
        let mut sampled = Vec::new();
        for (r, zone, spans) in zones {
            if spans.is_empty() {
                continue;
            }
            let exempt = if p.scenario.zone == Some(r) {
                p.scenario.episode.map(|w| (ms(w.from), ms(w.to) + 1))
            } else {
                None
            };
            let need = if zone.exclusion {
                ACC_MAX_M + MARGIN_M
            } else if cells && r == ZoneRef::Jurisdiction {
                CELL_ACC_MAX_M + MARGIN_M
            } else {
                ACC_MAX_M + MARGIN_M
            };
            let static_need = need.max(near_thr) + drift;
            let far = |segs: &[(LatLon, LatLon)]| {
                segs.iter().all(|(a, b)| {
                    if zone.exclusion {
                        zone.shape.segment_clearance(*a, *b) >= static_need
                    } else {
                        [a, b].iter().all(|q| {
                            zone.shape.bounds(**q).1 <= -static_need
                                || zone.shape.signed_distance(**q) <= -static_need
                        })
                    }
                })
            };
            let route_far = far(&route);
            if !(route_far && far(&legs)) {
                sampled.push((r, zone, spans, exempt, need, route_far));
            }
        }
        let no_loc = self.s.no_location_after.num_milliseconds();
        let share = p.person.poor_fix_share();
        let m = ((no_loc - lag).max(0) + i - 1) / i + 1;
        let risk = ticks.count() as f64 * share.powi(m.min(i64::from(i32::MAX)) as i32);
        let simulate_cells = cells && risk > 1e-9;
        if sampled.is_empty() && !simulate_cells {
            return errs;
        }

        // The fixes geoward may evaluate: every tick before silence, not surely quiet.
        let silent = p.device.silent_from.map(ms);
        let jump_k = p.device.jump_at.and_then(|t| ticks.first_at_or_after(t));
        let evaluated: Vec<(u64, i64)> = (0..ticks.count())
            .map(|k| (k, ticks.at_ms(k)))
            .filter(|&(_, t)| {
                silent.map_or(true, |s| t < s)
                    && !quiet.iter().any(|(a, b)| *a <= t && t + lag <= *b)
            })
            .collect();
        let offs: Vec<i64> = if lag == 0 {
            vec![0]
        } else {
            vec![0, lag / 2, lag]
        };
        let mut cache: Vec<Option<Vec<LatLon>>> = vec![None; evaluated.len()];
        let mut pos = |idx: usize| -> Vec<LatLon> {
            cache[idx]
                .get_or_insert_with(|| {
                    offs.iter()
                        .map(|o| {
                            let t = crate::plan::clock::from_ms(evaluated[idx].1 + o);
                            p.person.position_at(t).point()
                        })
                        .collect()
                })
                .clone()
        };
        let mut near = vec![false; evaluated.len()];

        for (r, zone, spans, exempt, need, route_far) in &sampled {
            // Samples far from every requirement need no successor for a while: the true
            // position moves at most `v` m/s; a segment between fixes strays at most half its
            // length from its ends.
            let req = need.max(MARGIN_M + drift / 2.0);
            let in_force = |t: i64| t <= span_to && contains(spans, t);
            let exempt_at = |t: i64| exempt.is_some_and(|(a, b)| a <= t && t < b);
            // The next time requirements may tighten: the exemption ends, a span opens.
            let tightens = |t: i64| {
                let mut b = exempt.map_or(i64::MAX, |(_, e)| if t < e { e } else { i64::MAX });
                for (a, _) in spans.iter() {
                    if *a > t {
                        b = b.min(*a);
                    }
                }
                b
            };
            let mut resume = i64::MIN;
            for idx in 0..evaluated.len() {
                let t_k = evaluated[idx].1;
                if (*route_far && !contains(&exc_spans, t_k)) || t_k + lag < resume {
                    continue;
                }
                let mut slack = f64::INFINITY;
                let mut failed = false;
                if offs.iter().any(|o| in_force(t_k + o)) {
                    let here = pos(idx);
                    for (o, q) in offs.iter().zip(&here) {
                        let t = t_k + o;
                        if !in_force(t) {
                            continue;
                        }
                        let (lo, hi) = zone.shape.bounds(*q);
                        let decided =
                            hi - lo < 1e-9 || lo > near_thr + req || hi < -(near_thr + req);
                        let (lo, hi) = if decided && lo.is_finite() {
                            (lo, hi)
                        } else {
                            let d = zone.shape.signed_distance(*q);
                            (d, d)
                        };
                        let abs_lo = if lo > 0.0 {
                            lo
                        } else if hi < 0.0 {
                            -hi
                        } else {
                            0.0
                        };
                        if abs_lo <= near_thr {
                            near[idx] = true;
                        }
                        if exempt_at(t) {
                            slack = slack.min(abs_lo - near_thr);
                            continue;
                        }
                        let good = if zone.exclusion { lo } else { -hi };
                        slack = slack.min((abs_lo - near_thr).min(good - req));
                        if good < *need {
                            failed = true;
                            errs.push(format!(
                                "{who}: at {} within {need} m of the border of {r:?} ({:.1} m)",
                                crate::plan::clock::from_ms(t),
                                zone.shape.signed_distance(*q)
                            ));
                            break;
                        }
                    }
                    let chord = !failed && zone.exclusion && idx > 0 && in_force(t_k);
                    let t_prev = if idx > 0 { evaluated[idx - 1].1 } else { t_k };
                    if chord && !exempt.is_some_and(|(a, b)| a < t_k + lag + 1 && t_prev < b) {
                        let prev = pos(idx - 1);
                        let ends = [
                            (prev[0], here[0]),
                            (prev[prev.len() - 1], here[here.len() - 1]),
                        ];
                        for (a, b) in ends {
                            let c = zone.shape.segment_clearance(a, b);
                            if c < MARGIN_M {
                                failed = true;
                                errs.push(format!(
                                    "{who}: the path between fixes at {} and {} passes {c:.1} m from {r:?}",
                                    crate::plan::clock::from_ms(t_prev),
                                    crate::plan::clock::from_ms(t_k)
                                ));
                                break;
                            }
                        }
                    }
                }
                if failed {
                    break;
                }
                let ahead = if slack > 0.0 {
                    (slack / v * 1000.0).min(1e15) as i64
                } else {
                    0
                };
                resume = t_k.saturating_add(ahead).min(tightens(t_k));
            }
        }

        // Cell fixes, from the tag's own noise, when a long run of them is not negligible.
        let mut cell = vec![false; evaluated.len()];
        if simulate_cells {
            let mut script = DeviceScript::new(p.person.clone(), p.device.clone());
            let at: HashMap<i64, usize> = evaluated
                .iter()
                .enumerate()
                .map(|(idx, (_, t))| (*t, idx))
                .collect();
            for k in 0..ticks.count() {
                let t = ticks.at(k);
                for a in script.tick(t) {
                    if let Action::Send(r) | Action::Buffer(r) = a {
                        let is_cell = r
                            .position
                            .is_some_and(|q| q.src == crate::movement::FixSource::Cell);
                        if let (true, Some(idx)) = (is_cell, at.get(&ms(t))) {
                            cell[*idx] = true;
                        }
                    }
                }
            }
        }
        // No run of possibly uncertain fixes lasts long enough for no_location.
        let mut since: Option<i64> = None;
        for (idx, (k, t)) in evaluated.iter().enumerate() {
            if Some(*k) == jump_k {
                continue;
            }
            if near[idx] || cell[idx] {
                let first = *since.get_or_insert(*t);
                if t + lag - first >= no_loc {
                    errs.push(format!(
                        "{who}: fixes may be uncertain from {} to {}, long enough for no_location",
                        crate::plan::clock::from_ms(first),
                        crate::plan::clock::from_ms(*t)
                    ));
                    break;
                }
            } else {
                since = None;
            }
        }
        errs
    }
}
