-- Alerts and their lifecycle.
--
-- One row per alert. An ongoing condition (supervisee, kind, zone) has at most one alert whose
-- condition has not cleared (`alerts_one_per_condition`); when it clears the alert keeps its
-- row until an officer acknowledges and resolves it, and a new violation is a new alert.
-- `alerts_raised_by` makes raising idempotent per deciding report: evaluating the same report
-- again (a retry, a second node) never raises a second alert.
--
-- Every change of an alert is a row in `alert_events`; its id is the officers' feed cursor.
-- Writers take one transaction-level advisory lock before inserting events, so event ids are
-- committed in increasing order and "every event after cursor N" never skips one.

create table alerts (
    id               bigint generated always as identity primary key,
    supervisee_id    uuid not null references supervisees (id),
    kind             text not null,
    severity         text not null check (severity in ('critical', 'serious', 'info')),
    status           text not null default 'open'
                         check (status in ('open', 'acknowledged', 'resolved')),
    zone_id          uuid,
    -- Device time of the deciding report (for lost contact: when contact was lost).
    event_at         timestamptz not null,
    opened_at        timestamptz not null,
    cleared_at       timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  uuid references officers (id),
    resolved_at      timestamptz,
    resolved_by      uuid references officers (id),
    -- When it escalates if still unacknowledged (null: this severity never escalates).
    escalate_at      timestamptz,
    escalated_at     timestamptz,
    late             boolean not null default false,
    lat              double precision,
    lon              double precision,
    acc              real,
    device_id        uuid,
    seq              bigint,
    -- Server receive time of the deciding report (for fix-to-officer latency).
    fix_received_at  timestamptz
);

create unique index alerts_one_per_condition
    on alerts (supervisee_id, kind, coalesce(zone_id, '00000000-0000-0000-0000-000000000000'::uuid))
    where cleared_at is null;
create unique index alerts_raised_by
    on alerts (supervisee_id, kind, coalesce(zone_id, '00000000-0000-0000-0000-000000000000'::uuid),
               event_at, coalesce(seq, -1));
create index alerts_supervisee on alerts (supervisee_id, id);
create index alerts_unresolved on alerts (status, id) where status <> 'resolved';
create index alerts_escalation on alerts (escalate_at) where status = 'open' and escalated_at is null;

create table alert_events (
    id         bigint generated always as identity primary key,
    alert_id   bigint not null references alerts (id),
    action     text not null check (action in
                   ('opened', 'cleared', 'acknowledged', 'resolved', 'escalated', 'repeated')),
    at         timestamptz not null,
    officer_id uuid references officers (id),
    note       text
);
create index alert_events_alert on alert_events (alert_id, id);
