-- History of every report a device sent: fixes (with a position) and status reports (without).
--
-- Partitioned by device time (`ts`), one partition per month, so the retention job drops whole
-- months. Partitions are created ahead of time by geoward (see src/store/fixes.rs); a default
-- partition catches anything outside them so an insert never fails for want of a partition.
--
-- Key: (device_id, seq, ts). PostgreSQL requires the partition key in every unique constraint.
-- A device resending a report resends the same seq and ts, so a resend is stored once. A device
-- whose counter restarted (factory reset) reuses seqs with new times: those are new reports and
-- are kept rather than silently dropped as duplicates.

create sequence fixes_id_seq as bigint;

create table fixes (
    id            bigint not null default nextval('fixes_id_seq'),
    device_id     uuid not null,
    -- The wearer when the report arrived (null when the device was unassigned).
    supervisee_id uuid,
    seq           bigint not null check (seq >= 0),
    ts            timestamptz not null,
    received_at   timestamptz not null default now(),
    kind          text not null check (kind in ('fix', 'status')),
    lat           double precision,
    lon           double precision,
    acc           real,
    src           text,
    speed         real,
    bat           smallint,
    strap         text,
    primary key (device_id, seq, ts),
    check ((kind = 'fix') = (lat is not null and lon is not null and acc is not null and src is not null))
) partition by range (ts);

alter sequence fixes_id_seq owned by fixes.id;

create index fixes_supervisee_ts on fixes (supervisee_id, ts);

create table fixes_default partition of fixes default;
