-- tiktok-connect-edge: no connection dies silently. Every change to a connection writes an event to
-- an outbox, in the same transaction as the change; the Worker delivers the outbox (queue, cron,
-- signed webhook) and sweeps live connections against TikTok. Idempotent, like the others, and part
-- of the same set: applied in order after 20261125130000_tiktok_claims.sql, it replaces that file's
-- tiktok_complete_exchange (same arguments, same answers, plus the event's id).
--
-- Events (payload.type):
--   tiktok.connection.connected           a completion stored a connection; reconnected: true when
--                                          it replaced one still stored (live or revoked)
--   tiktok.connection.advertiser_changed  reason: user_choice | advertiser_removed
--   tiktok.connection.revoked             detected_by: verify | sweep | proxy; code: TikTok's error code
--   tiktok.connection.disconnected        revoked_at_tiktok: true | false
-- Every payload: { id, type, occurred_at, user_id, connected_at, business_id, account_id,
-- advertisers: [{ id, name }], ...the type's own fields }. Ids are JSON strings (TikTok's exceed
-- 2^53, and a JSON number would lose them in most consumers); the token is never in a payload.
--
-- Who may call: every table and function here is for the server key (service_role) only. The
-- functions are security invoker, like the claim functions: even an EXECUTE granted by mistake
-- would leave a browser role without the table privileges the body needs.

-- When the sweep last took this connection: handed out by tiktok_sweep_batch (a lease, see there)
-- or checked by tiktok_record_verification; set by a completion too, whose advertiser list is a
-- check. Not proof TikTok answered at that time; the events say what TikTok answered.
alter table public.user_accounts add column if not exists tiktok_verified_at timestamptz;
comment on column public.user_accounts.tiktok_verified_at is
  'When the sweep last took or checked this connection (tiktok_sweep_batch, tiktok_record_verification) or a completion listed its advertisers.';

-- The sweep's queue: live connections, least recently taken first. Partial, so revoked and cleared
-- rows cost nothing.
create index if not exists user_accounts_tiktok_sweep on public.user_accounts (tiktok_verified_at nulls first, id)
  where tiktok_connected_at is not null and tiktok_revoked_at is null and tiktok_access_token is not null;

-- The browser roles hold per-column grants since the first migration, so a new column is closed to
-- them until granted. Whoever may read when its own connection was made may read when it was last
-- checked; never write it (INSERT and UPDATE of tiktok_ columns stay closed).
do $$
declare
  role_name text;
begin
  foreach role_name in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = role_name)
       and has_column_privilege(role_name, 'public.user_accounts', 'tiktok_connected_at', 'SELECT') then
      execute format('grant select (tiktok_verified_at) on public.user_accounts to %I', role_name);
    end if;
  end loop;
end;
$$;

-- The outbox. A row is written with the change it reports and stays until delivered and pruned.
-- Delivery is at least once: a receiver dedupes on payload.id (the webhook-id).
--
-- Products may read this table with the server key, or subscribe to it with Supabase Realtime from
-- a server (alter publication supabase_realtime add table public.tiktok_connection_events): RLS is
-- on with no policy, so a browser subscription receives nothing; the payloads name the user's
-- advertisers, and user_id links them to a person.
create table if not exists public.tiktok_connection_events (
  id uuid primary key default gen_random_uuid(),
  -- Deleting the user erases its events: there is no one left to tell, and the payloads are theirs.
  user_id uuid not null references public.user_accounts (id) on delete cascade,
  type text not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  attempts integer not null default 0,
  last_error text
);
alter table public.tiktok_connection_events drop constraint if exists tiktok_connection_events_type_check;
alter table public.tiktok_connection_events add constraint tiktok_connection_events_type_check check (type in (
  'tiktok.connection.connected', 'tiktok.connection.advertiser_changed',
  'tiktok.connection.revoked', 'tiktok.connection.disconnected'));
alter table public.tiktok_connection_events drop constraint if exists tiktok_connection_events_payload_check;
alter table public.tiktok_connection_events add constraint tiktok_connection_events_payload_check
  check (jsonb_typeof(payload) = 'object' and payload ->> 'type' = type and payload ->> 'id' = id::text);

-- One user's history (products reading the table; the cascade on user deletion).
create index if not exists tiktok_connection_events_user_created on public.tiktok_connection_events (user_id, created_at);
-- The cron's re-enqueue: only the few undelivered rows, oldest first.
create index if not exists tiktok_connection_events_undelivered on public.tiktok_connection_events (created_at) where delivered_at is null;
-- Pruning walks delivered rows by age.
create index if not exists tiktok_connection_events_created on public.tiktok_connection_events (created_at);

alter table public.tiktok_connection_events enable row level security;
revoke all on public.tiktok_connection_events from public, anon, authenticated;
grant select, insert, update, delete on public.tiktok_connection_events to service_role;

-- Writes one event; called only from the functions below, inside the change's own transaction, so
-- the event and the change commit or roll back together. Takes the connection's fields one by one
-- (never the row) so the token cannot end up in a payload. Advertisers are rebuilt as
-- [{id, name}] with ->> so an id is a string even if a number was ever stored (jsonb keeps numbers
-- exact, so its text is the exact id).
create or replace function public.tiktok_write_event(
  p_user_id uuid,
  p_type text,
  p_occurred_at timestamptz,
  p_connected_at timestamptz,
  p_business_id text,
  p_account_id text,
  p_advertisers jsonb,
  p_extra jsonb
) returns uuid
language plpgsql
set search_path = ''
as $$
declare
  event_id uuid := gen_random_uuid();
begin
  insert into public.tiktok_connection_events (id, user_id, type, payload)
  values (event_id, p_user_id, p_type,
    coalesce(p_extra, '{}'::jsonb) || jsonb_build_object(
      'id', event_id,
      'type', p_type,
      'occurred_at', p_occurred_at,
      'user_id', p_user_id,
      'connected_at', p_connected_at,
      'business_id', p_business_id,
      'account_id', p_account_id,
      'advertisers', coalesce(
        (select jsonb_agg(jsonb_build_object('id', a ->> 'id', 'name', a ->> 'name') order by n)
           from jsonb_array_elements(case when jsonb_typeof(p_advertisers) = 'array' then p_advertisers else '[]'::jsonb end)
                with ordinality as t(a, n)),
        '[]'::jsonb)));
  return event_id;
end;
$$;
revoke all on function public.tiktok_write_event(uuid, text, timestamptz, timestamptz, text, text, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.tiktok_write_event(uuid, text, timestamptz, timestamptz, text, text, jsonb, jsonb) to service_role;

-- As in 20261125130000_tiktok_claims.sql, plus the connected event and tiktok_verified_at (the
-- completion has just listed the advertisers with the token). Answers {"outcome": "ok",
-- "connected_at": …, "event_id": …}, or {"outcome": "claim_lost" | "account_not_found",
-- "event_id": null}.
--
-- reconnected: the row still held a connection (tiktok_connected_at not null, revoked or not) when
-- this one replaced it. After a disconnect the columns are cleared, so the next connection is not a
-- reconnection: the product has already been told "disconnected" and starts afresh.
create or replace function public.tiktok_complete_exchange(
  p_state_nonce text,
  p_user_id uuid,
  p_claimed_by text,
  p_access_token text,
  p_result jsonb
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  previous timestamptz;
  connected timestamptz;
  event_id uuid;
begin
  perform 1 from public.tiktok_oauth_exchanges
    where state_nonce = p_state_nonce and user_id = p_user_id and claimed_by = p_claimed_by and status = 'pending'
    for update;
  if not found then
    return jsonb_build_object('outcome', 'claim_lost', 'event_id', null);
  end if;

  -- Locked, so what "previous" says holds until this transaction ends.
  select tiktok_connected_at into previous from public.user_accounts where id = p_user_id for update;
  if not found then
    return jsonb_build_object('outcome', 'account_not_found', 'event_id', null);
  end if;

  update public.user_accounts
     set tiktok_access_token = p_access_token,
         tiktok_business_id = p_result ->> 'business_id',
         tiktok_account_id = p_result ->> 'account_id',
         tiktok_advertisers = p_result -> 'advertisers',
         -- clock_timestamp(), not now(): two connections in one transaction still differ.
         tiktok_connected_at = clock_timestamp(),
         tiktok_revoked_at = null,
         tiktok_verified_at = clock_timestamp()
   where id = p_user_id
  returning tiktok_connected_at into connected;

  event_id := public.tiktok_write_event(
    p_user_id, 'tiktok.connection.connected', connected, connected,
    p_result ->> 'business_id', p_result ->> 'account_id', p_result -> 'advertisers',
    jsonb_build_object('reconnected', previous is not null));

  update public.tiktok_oauth_exchanges
     set status = 'done', result = jsonb_build_object('return_to', p_result ->> 'return_to')
   where state_nonce = p_state_nonce and claimed_by = p_claimed_by;
  return jsonb_build_object('outcome', 'ok', 'connected_at', connected, 'event_id', event_id);
end;
$$;
revoke all on function public.tiktok_complete_exchange(text, uuid, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.tiktok_complete_exchange(text, uuid, text, text, jsonb) to service_role;

-- The user picks an advertiser of the connection made at p_connected_at (the one the Worker read,
-- or the selection ticket's). Only an id in the list stored with that connection is accepted: the
-- caller's advertiser id comes from the browser. Answers {"outcome": …, "event_id": …}:
--   ok             stored; also "business_id", "account_id", "advertisers". event_id is null when
--                  the id was already the chosen one (nothing changed, nothing to tell);
--   not_allowed    the id is not in the stored list;
--   stale          another connection has replaced the one made at p_connected_at;
--   not_connected  no live connection (no row, never connected, disconnected or revoked).
create or replace function public.tiktok_choose_advertiser(
  p_user_id uuid,
  p_advertiser_id text,
  p_connected_at timestamptz
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  account record;
  chosen jsonb;
  event_id uuid;
begin
  select tiktok_business_id, tiktok_account_id, tiktok_advertisers, tiktok_connected_at, tiktok_revoked_at
    into account
    from public.user_accounts where id = p_user_id
    for update;
  if not found or account.tiktok_connected_at is null or account.tiktok_revoked_at is not null then
    return jsonb_build_object('outcome', 'not_connected', 'event_id', null);
  end if;
  if account.tiktok_connected_at is distinct from p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;

  select a into chosen
    from jsonb_array_elements(case when jsonb_typeof(account.tiktok_advertisers) = 'array' then account.tiktok_advertisers else '[]'::jsonb end)
         with ordinality as t(a, n)
   where a ->> 'id' = p_advertiser_id
   order by n
   limit 1;
  if chosen is null then
    return jsonb_build_object('outcome', 'not_allowed', 'event_id', null);
  end if;

  if account.tiktok_business_id is distinct from (chosen ->> 'id') then
    update public.user_accounts
       set tiktok_business_id = chosen ->> 'id', tiktok_account_id = chosen ->> 'name'
     where id = p_user_id;
    event_id := public.tiktok_write_event(
      p_user_id, 'tiktok.connection.advertiser_changed', now(), account.tiktok_connected_at,
      chosen ->> 'id', chosen ->> 'name', account.tiktok_advertisers,
      jsonb_build_object('reason', 'user_choice', 'previous_business_id', account.tiktok_business_id));
  end if;
  return jsonb_build_object(
    'outcome', 'ok',
    'business_id', chosen ->> 'id',
    'account_id', chosen ->> 'name',
    'advertisers', coalesce(account.tiktok_advertisers, '[]'::jsonb),
    'event_id', event_id);
end;
$$;
revoke all on function public.tiktok_choose_advertiser(uuid, text, timestamptz) from public, anon, authenticated;
grant execute on function public.tiktok_choose_advertiser(uuid, text, timestamptz) to service_role;

-- TikTok refused the token of the connection made at p_connected_at (p_code: TikTok's error code;
-- which codes mean "revoked" is the Worker's call). Marks it revoked once: the first caller writes
-- the event, later ones (the verify route and the sweep both noticing) change nothing. Answers
-- {"outcome": …, "event_id": …}:
--   ok               marked now: event revoked;
--   already_revoked  that connection was already marked;
--   stale            a newer connection replaced it meanwhile (its token is not the refused one);
--   not_connected    no connection stored.
create or replace function public.tiktok_mark_revoked(
  p_user_id uuid,
  p_detected_by text,
  p_code integer,
  p_connected_at timestamptz
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  account record;
  event_id uuid;
begin
  if p_detected_by is null or p_detected_by not in ('verify', 'sweep', 'proxy') then
    raise exception 'tiktok_mark_revoked: detected_by must be verify, sweep or proxy, not %', p_detected_by using errcode = '22023';
  end if;
  select tiktok_business_id, tiktok_account_id, tiktok_advertisers, tiktok_connected_at, tiktok_revoked_at
    into account
    from public.user_accounts where id = p_user_id
    for update;
  if not found or account.tiktok_connected_at is null then
    return jsonb_build_object('outcome', 'not_connected', 'event_id', null);
  end if;
  if account.tiktok_connected_at is distinct from p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;
  if account.tiktok_revoked_at is not null then
    return jsonb_build_object('outcome', 'already_revoked', 'event_id', null);
  end if;

  update public.user_accounts set tiktok_revoked_at = now() where id = p_user_id;
  event_id := public.tiktok_write_event(
    p_user_id, 'tiktok.connection.revoked', now(), account.tiktok_connected_at,
    account.tiktok_business_id, account.tiktok_account_id, account.tiktok_advertisers,
    jsonb_build_object('detected_by', p_detected_by, 'code', p_code));
  return jsonb_build_object('outcome', 'ok', 'event_id', event_id);
end;
$$;
revoke all on function public.tiktok_mark_revoked(uuid, text, integer, timestamptz) from public, anon, authenticated;
grant execute on function public.tiktok_mark_revoked(uuid, text, integer, timestamptz) to service_role;

-- Forgets the connection (token, advertisers, choice, connected_at, revoked_at), as the user's
-- disconnect does after revoking at TikTok. p_revoked_at_tiktok: whether TikTok confirmed the
-- revocation. p_connected_at (optional): the connection the Worker revoked; when given, a newer
-- connection made meanwhile (another tab) is left alone rather than cleared with a live grant at
-- TikTok and reported as revoked. Answers {"outcome": …, "event_id": …}:
--   ok                 a connection was cleared: event disconnected (with what it was);
--   not_connected      nothing was connected (any leftover columns are cleared anyway): no event;
--   stale              p_connected_at given and another connection is stored now: nothing changed;
--   account_not_found  no user_accounts row.
create or replace function public.tiktok_disconnect(
  p_user_id uuid,
  p_revoked_at_tiktok boolean,
  p_connected_at timestamptz default null
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  account record;
  event_id uuid;
begin
  select tiktok_business_id, tiktok_account_id, tiktok_advertisers, tiktok_connected_at
    into account
    from public.user_accounts where id = p_user_id
    for update;
  if not found then
    return jsonb_build_object('outcome', 'account_not_found', 'event_id', null);
  end if;
  if p_connected_at is not null and account.tiktok_connected_at is not null
     and account.tiktok_connected_at <> p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;

  update public.user_accounts
     set tiktok_access_token = null,
         tiktok_business_id = null,
         tiktok_account_id = null,
         tiktok_advertisers = null,
         tiktok_connected_at = null,
         tiktok_revoked_at = null,
         tiktok_verified_at = null
   where id = p_user_id;
  if account.tiktok_connected_at is null then
    return jsonb_build_object('outcome', 'not_connected', 'event_id', null);
  end if;

  event_id := public.tiktok_write_event(
    p_user_id, 'tiktok.connection.disconnected', now(), account.tiktok_connected_at,
    account.tiktok_business_id, account.tiktok_account_id, account.tiktok_advertisers,
    jsonb_build_object('revoked_at_tiktok', coalesce(p_revoked_at_tiktok, false)));
  return jsonb_build_object('outcome', 'ok', 'event_id', event_id);
end;
$$;
revoke all on function public.tiktok_disconnect(uuid, boolean, timestamptz) from public, anon, authenticated;
grant execute on function public.tiktok_disconnect(uuid, boolean, timestamptz) to service_role;

-- The sweep's answer for one connection: TikTok's advertiser list for its token, fetched now.
-- p_advertisers must be [{ "id": "<decimal string>", "name": "<string>" }, …] (anything else
-- raises 22023: it would be stored and sent to products). Answers {"outcome": …, "event_id": …}:
--   ok                  still live; the stored list is replaced by TikTok's (added, removed or
--                       renamed advertisers; the chosen one's name follows): no event, because what
--                       the product acts on, the chosen advertiser, has not changed;
--   advertiser_removed  the chosen advertiser is no longer in the list: the choice is cleared
--                       (business_id and account_id null) and event advertiser_changed, reason
--                       advertiser_removed, with previous_business_id;
--   revoked             the list is empty: the token reaches nothing, so the connection is marked
--                       revoked (detected_by sweep, code null) and the user must reconnect; the
--                       stored list and choice are kept, as a refused token's are, to say what was lost;
--   stale               the connection made at p_connected_at is not live any more (replaced,
--                       disconnected or revoked): nothing written.
-- Why the choice is cleared rather than moved to another advertiser: an advertiser is an ad account,
-- often a client's; switching one without the user would let the product read or spend on an
-- account nobody chose. The completion may pick the first advertiser because the user is there to
-- change it; the sweep runs with no one watching.
create or replace function public.tiktok_record_verification(
  p_user_id uuid,
  p_connected_at timestamptz,
  p_advertisers jsonb
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  account record;
  listed jsonb;
  chosen jsonb;
  event_id uuid;
begin
  if p_advertisers is null or jsonb_typeof(p_advertisers) <> 'array' or exists (
       select 1 from jsonb_array_elements(p_advertisers) a
        where jsonb_typeof(a) <> 'object'
           or jsonb_typeof(a -> 'id') is distinct from 'string'
           or (a ->> 'id') !~ '^[0-9]{1,32}$'
           or jsonb_typeof(a -> 'name') is distinct from 'string') then
    raise exception 'tiktok_record_verification: advertisers must be [{"id": "<decimal string>", "name": "<string>"}]' using errcode = '22023';
  end if;
  -- Only the two known keys are stored, in TikTok's order.
  select coalesce(jsonb_agg(jsonb_build_object('id', a -> 'id', 'name', a -> 'name') order by n), '[]'::jsonb)
    into listed
    from jsonb_array_elements(p_advertisers) with ordinality as t(a, n);

  select tiktok_business_id, tiktok_account_id, tiktok_advertisers, tiktok_connected_at
    into account
    from public.user_accounts
   where id = p_user_id and tiktok_connected_at is not null and tiktok_revoked_at is null and tiktok_access_token is not null
   for update;
  if not found or account.tiktok_connected_at is distinct from p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;

  if jsonb_array_length(listed) = 0 then
    update public.user_accounts set tiktok_revoked_at = now(), tiktok_verified_at = now() where id = p_user_id;
    event_id := public.tiktok_write_event(
      p_user_id, 'tiktok.connection.revoked', now(), account.tiktok_connected_at,
      account.tiktok_business_id, account.tiktok_account_id, account.tiktok_advertisers,
      jsonb_build_object('detected_by', 'sweep', 'code', null));
    return jsonb_build_object('outcome', 'revoked', 'event_id', event_id);
  end if;

  select a into chosen from jsonb_array_elements(listed) a where a ->> 'id' = account.tiktok_business_id limit 1;
  if account.tiktok_business_id is not null and chosen is null then
    update public.user_accounts
       set tiktok_advertisers = listed, tiktok_business_id = null, tiktok_account_id = null, tiktok_verified_at = now()
     where id = p_user_id;
    event_id := public.tiktok_write_event(
      p_user_id, 'tiktok.connection.advertiser_changed', now(), account.tiktok_connected_at,
      null, null, listed,
      jsonb_build_object('reason', 'advertiser_removed', 'previous_business_id', account.tiktok_business_id));
    return jsonb_build_object('outcome', 'advertiser_removed', 'event_id', event_id);
  end if;

  update public.user_accounts
     set tiktok_advertisers = listed,
         tiktok_account_id = coalesce(chosen ->> 'name', account.tiktok_account_id),
         tiktok_verified_at = now()
   where id = p_user_id;
  return jsonb_build_object('outcome', 'ok', 'event_id', null);
end;
$$;
revoke all on function public.tiktok_record_verification(uuid, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.tiktok_record_verification(uuid, timestamptz, jsonb) to service_role;

-- The next live connections to check at TikTok, least recently taken first (never taken first),
-- at most p_limit (capped at 1000; null or negative: none), with the stored token (sealed, as
-- stored: the Worker opens it) and connected_at (pass it back to tiktok_record_verification or
-- tiktok_mark_revoked, so an answer about an old token never touches a newer connection).
--
-- A lease: handing a connection out sets its tiktok_verified_at, and rows locked by a concurrent
-- call are skipped, so overlapping sweep runs (a slow run still going when the next cron fires, or
-- the same cron delivered twice) take different connections instead of checking the same ones
-- twice against the app's TikTok quota. A run that dies after taking its batch leaves those
-- connections unchecked until their turn comes round again: a full cycle late, never lost.
create or replace function public.tiktok_sweep_batch(p_limit integer)
returns table (user_id uuid, connected_at timestamptz, access_token text)
language sql
set search_path = ''
as $$
  with picked as (
    select id, tiktok_verified_at as taken_before
      from public.user_accounts
     where tiktok_connected_at is not null and tiktok_revoked_at is null and tiktok_access_token is not null
     order by tiktok_verified_at nulls first, id
     limit least(greatest(coalesce(p_limit, 0), 0), 1000)
       for update skip locked
  ), leased as (
    update public.user_accounts u
       set tiktok_verified_at = now()
      from picked
     where u.id = picked.id
    returning u.id, u.tiktok_connected_at, u.tiktok_access_token, picked.taken_before
  )
  select id, tiktok_connected_at, tiktok_access_token from leased order by taken_before nulls first, id;
$$;
revoke all on function public.tiktok_sweep_batch(integer) from public, anon, authenticated;
grant execute on function public.tiktok_sweep_batch(integer) to service_role;

-- Delivery. The Worker enqueues an event's id right after the change commits; the cron re-enqueues
-- what is still undelivered after p_older_than (an enqueue that failed, a message that went to the
-- dead-letter queue). Choose p_older_than longer than the queue's own retries take, or the cron
-- enqueues events still being retried: harmless (at least once), but wasted calls.
-- Undelivered events created before now() - p_older_than, oldest first, at most p_limit (capped at
-- 1000; null or negative: none).
create or replace function public.tiktok_events_to_deliver(p_older_than interval, p_limit integer)
returns table (id uuid, type text, created_at timestamptz, attempts integer)
language sql
stable
set search_path = ''
as $$
  select e.id, e.type, e.created_at, e.attempts
    from public.tiktok_connection_events e
   where e.delivered_at is null and e.created_at < now() - p_older_than
   order by e.created_at, e.id
   limit least(greatest(coalesce(p_limit, 0), 0), 1000);
$$;
revoke all on function public.tiktok_events_to_deliver(interval, integer) from public, anon, authenticated;
grant execute on function public.tiktok_events_to_deliver(interval, integer) to service_role;

-- For the queue consumer: {"id", "type", "payload", "attempts", "created_at"} of an undelivered
-- event; null when it was delivered meanwhile (a re-enqueued duplicate) or pruned. The payload is
-- what is sent, byte for byte as the consumer serialises it: nothing here adds or drops a field.
create or replace function public.tiktok_event_for_delivery(p_id uuid) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', e.id, 'type', e.type, 'payload', e.payload, 'attempts', e.attempts, 'created_at', e.created_at)
    from public.tiktok_connection_events e
   where e.id = p_id and e.delivered_at is null;
$$;
revoke all on function public.tiktok_event_for_delivery(uuid) from public, anon, authenticated;
grant execute on function public.tiktok_event_for_delivery(uuid) to service_role;

-- The receiver accepted it. attempts counts this one too. Answers {"outcome": "ok" |
-- "already_delivered" | "not_found"}; a second call changes nothing (delivered_at stays the first).
create or replace function public.tiktok_mark_event_delivered(p_id uuid) returns jsonb
language plpgsql
set search_path = ''
as $$
begin
  update public.tiktok_connection_events
     set delivered_at = now(), attempts = attempts + 1
   where id = p_id and delivered_at is null;
  if found then
    return jsonb_build_object('outcome', 'ok');
  end if;
  return jsonb_build_object('outcome', case when exists (select 1 from public.tiktok_connection_events where id = p_id) then 'already_delivered' else 'not_found' end);
end;
$$;
revoke all on function public.tiktok_mark_event_delivered(uuid) from public, anon, authenticated;
grant execute on function public.tiktok_mark_event_delivered(uuid) to service_role;

-- A failed delivery: counts it and keeps the error's first 500 characters (a status line and a
-- reason; never the request, which carries the signature). Answers {"outcome": "ok",
-- "attempts": n} (for the caller's back-off), or {"outcome": "already_delivered" | "not_found",
-- "attempts": null}: a late failure never un-delivers an event.
create or replace function public.tiktok_record_event_failure(p_id uuid, p_error text) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  counted integer;
begin
  update public.tiktok_connection_events
     set attempts = attempts + 1, last_error = left(p_error, 500)
   where id = p_id and delivered_at is null
  returning attempts into counted;
  if found then
    return jsonb_build_object('outcome', 'ok', 'attempts', counted);
  end if;
  return jsonb_build_object(
    'outcome', case when exists (select 1 from public.tiktok_connection_events where id = p_id) then 'already_delivered' else 'not_found' end,
    'attempts', null);
end;
$$;
revoke all on function public.tiktok_record_event_failure(uuid, text) from public, anon, authenticated;
grant execute on function public.tiktok_record_event_failure(uuid, text) to service_role;

-- Deletes delivered events created more than p_keep ago; undelivered ones stay whatever their age
-- (an event is dropped only once the product has it). Answers how many were deleted.
create or replace function public.tiktok_prune_events(p_keep interval default interval '30 days') returns integer
language plpgsql
set search_path = ''
as $$
declare
  deleted integer;
begin
  delete from public.tiktok_connection_events
   where delivered_at is not null and created_at < now() - p_keep;
  get diagnostics deleted = row_count;
  return deleted;
end;
$$;
revoke all on function public.tiktok_prune_events(interval) from public, anon, authenticated;
grant execute on function public.tiktok_prune_events(interval) to service_role;
