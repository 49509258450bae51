-- Foundation: officers and their sessions, supervisees, devices, zones, monitoring orders,
-- approved leave and the audit log. Ids of records are UUIDs (opaque strings on the wire);
-- anything that grows per fix or per event uses bigint.

create table officers (
    id            uuid primary key,
    username      text not null,
    name          text not null,
    roles         text[] not null check (cardinality(roles) > 0),
    password_hash text not null,
    active        boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index officers_username_key on officers (lower(username));

create table officer_sessions (
    token_hash  bytea primary key,
    officer_id  uuid not null references officers (id),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    revoked_at  timestamptz
);
create index officer_sessions_officer on officer_sessions (officer_id);

create table supervisees (
    id                   uuid primary key,
    name                 text not null,
    officer_id           uuid not null references officers (id),
    timezone             text not null,
    lost_contact_after_s integer not null check (lost_contact_after_s > 0),
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now()
);
create index supervisees_officer on supervisees (officer_id);

create table devices (
    id          uuid primary key,
    serial      text not null,
    token_hash  bytea not null unique,
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);
create unique index devices_serial_key on devices (serial);

-- One active device per supervisee and one supervisee per device: enforced by the two partial
-- unique indexes. Ended assignments stay as history.
create table device_assignments (
    id            bigint generated always as identity primary key,
    device_id     uuid not null references devices (id),
    supervisee_id uuid not null references supervisees (id),
    assigned_at   timestamptz not null default now(),
    assigned_by   uuid references officers (id),
    ended_at      timestamptz
);
create unique index device_assignments_active_device
    on device_assignments (device_id) where ended_at is null;
create unique index device_assignments_active_supervisee
    on device_assignments (supervisee_id) where ended_at is null;

-- geometry is WGS-84 GeoJSON (converted on input); source_geometry is what the officer drew,
-- in source_datum.
create table zones (
    id              uuid primary key,
    name            text not null,
    kind            text not null check (kind in ('inclusion', 'exclusion')),
    geometry        jsonb not null,
    source_geometry jsonb not null,
    source_datum    text not null check (source_datum in ('wgs84', 'gcj02', 'bd09')),
    schedule        jsonb not null default '[]'::jsonb,
    buffer_m        double precision not null default 0 check (buffer_m >= 0),
    confirm_fixes   integer not null default 2 check (confirm_fixes between 1 and 100),
    shared          boolean not null default false,
    created_by      uuid references officers (id),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

create table supervisee_zones (
    supervisee_id uuid not null references supervisees (id),
    zone_id       uuid not null references zones (id),
    attached_at   timestamptz not null default now(),
    attached_by   uuid references officers (id),
    primary key (supervisee_id, zone_id)
);
create index supervisee_zones_zone on supervisee_zones (zone_id);

create table monitoring_orders (
    id            uuid primary key,
    supervisee_id uuid not null references supervisees (id),
    basis         text not null check (basis in (
                      'prohibition_order_violation',
                      'left_jurisdiction_without_approval',
                      'refused_to_report_after_warning',
                      'public_security_penalty',
                      'pending_revocation')),
    starts_at     timestamptz not null,
    ends_at       timestamptz not null,
    approved_by   text not null,
    created_by    uuid references officers (id),
    created_at    timestamptz not null default now(),
    check (ends_at > starts_at)
);
create index monitoring_orders_supervisee on monitoring_orders (supervisee_id, starts_at);

create table leaves (
    id                   uuid primary key,
    supervisee_id        uuid not null references supervisees (id),
    starts_at            timestamptz not null,
    ends_at              timestamptz not null,
    destination          jsonb,
    source_destination   jsonb,
    source_datum         text check (source_datum in ('wgs84', 'gcj02', 'bd09')),
    reason               text not null,
    created_by           uuid references officers (id),
    created_at           timestamptz not null default now(),
    cancelled_at         timestamptz,
    cancelled_by         uuid references officers (id),
    check (ends_at > starts_at)
);
create index leaves_supervisee on leaves (supervisee_id, starts_at);

-- Who did or saw what, when, from where. Append-only.
create table audit_log (
    id             bigint generated always as identity primary key,
    at             timestamptz not null default now(),
    actor_id       uuid,
    actor_username text,
    action         text not null,
    target_type    text not null,
    target_id      text,
    supervisee_id  uuid,
    remote_addr    text,
    detail         jsonb not null default '{}'::jsonb
);
create index audit_log_at on audit_log (at);
create index audit_log_supervisee on audit_log (supervisee_id, at);
create index audit_log_actor on audit_log (actor_id, at);
