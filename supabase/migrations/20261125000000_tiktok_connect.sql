-- tiktok-connect-edge: the connector's whole schema, in its final form. It creates its own tables,
-- a view and functions in public, and changes nothing it did not create: of the project it needs
-- only Supabase's auth.users (and the roles anon, authenticated, service_role). Applied again, it
-- changes nothing. tiktok_connect_schema() answers its version: the Worker reads it once per
-- isolate, and its health names this file while the version is missing or older. Apply it as one
-- transaction, as `supabase db push` and the SQL editor do (psql: -1), so that the check at the end
-- leaves nothing behind when it refuses.
--
-- Who may do what, whatever the project's default privileges (the grants at the end of the file):
--   service_role   every table and function here: the Worker's server key, and the product's servers;
--   authenticated  the view tiktok_connection_status, its own row only;
--   anon, PUBLIC   nothing.
-- Every function is security invoker with an empty search_path: an EXECUTE granted by mistake would
-- still leave a browser role without the table privileges the body needs.
--
-- Events (payload.type), written in the same transaction as the change they report:
--   tiktok.connection.connected           reconnected: true when it replaced a stored connection
--                                          (live or revoked)
--   tiktok.connection.advertiser_changed  reason: user_choice | advertiser_removed; previous_advertiser_id
--   tiktok.connection.revoked             detected_by: verify | sweep | proxy; code: TikTok's error code
--   tiktok.connection.disconnected        revoked_at_tiktok: true | false
-- Every payload: { id, type, occurred_at, user_id, connected_at, advertiser: { id, name } | null,
-- advertisers: [{ id, name }], ...the type's own fields }, with what the connection was at that
-- moment. Ids are JSON strings (TikTok's exceed 2^53, and a JSON number would lose them in most
-- consumers); the token is never in a payload.


-- ── Tables ──────────────────────────────────────────────────────────────────────────────────────

-- One row per connected user. No row: not connected. A disconnect deletes the row (its event says
-- what it was), and so does deleting the Supabase user.
create table if not exists public.tiktok_connections (
  user_id uuid primary key references auth.users (id) on delete cascade,
  access_token text not null,
  -- The advertiser the product acts for. Both null once the sweep found it gone from TikTok's list:
  -- the user must choose again.
  advertiser_id text,
  advertiser_name text,
  advertisers jsonb not null,
  -- The connection's identity: each completion sets it anew, and every later change names the
  -- connection it is about by it, so an answer about an old token never touches a newer one.
  connected_at timestamptz not null,
  revoked_at timestamptz,
  revoked_code integer,
  verified_at timestamptz,
  -- The shape every reader relies on, whoever writes: ids are decimal strings, names strings. The
  -- first path refuses an element that is no object (lax mode would look inside a nested array).
  constraint tiktok_connections_advertisers_shape check (
    jsonb_typeof(advertisers) = 'array'
    and not jsonb_path_exists(advertisers, 'strict $[*] ? (@.type() != "object")')
    and not jsonb_path_exists(advertisers,
      'lax $[*] ? (!(@.id.type() == "string" && @.id like_regex "^[0-9]{1,32}$" && @.name.type() == "string"))')),
  -- The chosen advertiser is always one the token reaches, as stored: no write can pick another.
  constraint tiktok_connections_chosen_advertiser check (
    (advertiser_id is null and advertiser_name is null)
    or advertisers @> jsonb_build_array(jsonb_build_object('id', advertiser_id, 'name', advertiser_name))),
  constraint tiktok_connections_revoked_code check (revoked_code is null or revoked_at is not null)
);
comment on table public.tiktok_connections is
  'tiktok-connect-edge: one TikTok advertiser connection per user; server roles only (browsers read tiktok_connection_status).';
comment on column public.tiktok_connections.access_token is
  'TikTok advertiser token: plaintext, or enc:v1:<kid>:<iv>:<ciphertext> (bound to user_id) when TOKEN_ENCRYPTION_KEY is set.';
comment on column public.tiktok_connections.advertisers is
  'Every advertiser the token may manage, in TikTok''s order: [{"id": "<decimal string>", "name": "..."}].';
comment on column public.tiktok_connections.revoked_code is
  'TikTok''s error code when it refused the token (40105, 40102…); null when the advertiser list came back empty.';
comment on column public.tiktok_connections.verified_at is
  'When the sweep last took or checked this connection, or its completion listed the advertisers.';

-- The sweep's queue: live connections, least recently taken first. Partial, so revoked ones cost nothing.
create index if not exists tiktok_connections_sweep on public.tiktok_connections (verified_at nulls first, user_id)
  where revoked_at is null;

-- The user's own row, for the status view below (the grants give no other column).
alter table public.tiktok_connections enable row level security;
drop policy if exists tiktok_connections_own_status on public.tiktok_connections;
create policy tiktok_connections_own_status on public.tiktok_connections
  for select to authenticated using (user_id = (select auth.uid()));

-- What a product page shows without calling the Worker: with the user's session,
-- supabase.from('tiktok_connection_status').select('*') answers its own row, or none (not
-- connected). security_invoker: the table's policy and column grants decide, as the user. The token
-- is not a column here, and the user holds no grant on it.
create or replace view public.tiktok_connection_status with (security_invoker = true) as
  select user_id, advertiser_id, advertiser_name, advertisers, connected_at, revoked_at, verified_at
    from public.tiktok_connections;
comment on view public.tiktok_connection_status is
  'tiktok-connect-edge: the non-secret columns of tiktok_connections; authenticated reads its own row.';

-- One row per state that reached the code exchange: the claim, a small state machine decided in
-- one statement each.
--   (none) --claim--> pending --complete--> done
--                        |
--                        +--release--> released --claim (fewer than 5 failures)--> pending
-- The primary key makes a state single-use: of two concurrent claims exactly one INSERT wins. A
-- released claim counts a failed attempt; after five the state is locked and the user starts again.
-- The count lives here, not in a Worker isolate, so it holds however many isolates serve the
-- attempts. Only the request holding a claim (claimed_by) can complete or release it. A claim
-- left pending for two minutes (its request was cancelled; a Worker request never runs that long)
-- counts as released.
create table if not exists public.tiktok_oauth_exchanges (
  state_nonce text primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  code_hash text not null,
  -- A random id the Worker generates per request; never taken from a request header.
  claimed_by text not null,
  status text not null default 'pending' check (status in ('pending', 'done', 'released')),
  failed_attempts integer not null default 0,
  -- Set when done: where a replayed callback sends the browser.
  return_to text,
  created_at timestamptz not null default now(),
  claimed_at timestamptz not null default now()
);
-- A state lives ten minutes; claims older than a day are deleted by age.
create index if not exists tiktok_oauth_exchanges_created on public.tiktok_oauth_exchanges (created_at);
-- Deleting a user finds its claims.
create index if not exists tiktok_oauth_exchanges_user on public.tiktok_oauth_exchanges (user_id);
-- RLS on with no policy: even a grant made by mistake would show a browser role no row.
alter table public.tiktok_oauth_exchanges enable row level security;

-- The outbox. A row is written with the change it reports and stays until delivered and pruned.
-- Delivery is at least once: a receiver dedupes on payload.id (the webhook-id). Products may read
-- it with the server key, or subscribe with Supabase Realtime from a server: RLS is on with no
-- policy, so a browser subscription receives nothing (the payloads name a person's ad accounts).
create table if not exists public.tiktok_connection_events (
  id uuid primary key default gen_random_uuid(),
  -- Deleting the user erases its events: there is no one left to tell, and the payloads are theirs.
  user_id uuid not null references auth.users (id) on delete cascade,
  type text not null constraint tiktok_connection_events_type_check check (type in (
    'tiktok.connection.connected', 'tiktok.connection.advertiser_changed',
    'tiktok.connection.revoked', 'tiktok.connection.disconnected')),
  payload jsonb not null,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  attempts integer not null default 0,
  last_error text,
  constraint tiktok_connection_events_payload_check
    check (jsonb_typeof(payload) = 'object' and payload ->> 'type' = type and payload ->> 'id' = id::text)
);
-- One user's history (products reading the table; the cascade on user deletion).
create index if not exists tiktok_connection_events_user_created on public.tiktok_connection_events (user_id, created_at);
-- The cron's re-enqueue: only the few undelivered rows, oldest first.
create index if not exists tiktok_connection_events_undelivered on public.tiktok_connection_events (created_at) where delivered_at is null;
-- Pruning walks delivered rows by age.
create index if not exists tiktok_connection_events_created on public.tiktok_connection_events (created_at);
alter table public.tiktok_connection_events enable row level security;


-- ── Functions, in the order a connection lives ──────────────────────────────────────────────────

-- The schema this file makes. The Worker needs at least the version it was built for; a later
-- file keeps older Workers working while they are replaced (apply, then deploy), so higher is fine.
create or replace function public.tiktok_connect_schema() returns jsonb
language sql
immutable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('version', 1, 'file', 'supabase/migrations/20261125000000_tiktok_connect.sql');
$$;

-- What a replayed callback answers: the connection as stored now (the user may have chosen another
-- advertiser since), not the one the first answer carried. Null when there is no live connection.
create or replace function public.tiktok_connection_summary(p_user_id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
           'advertiser', case when advertiser_id is null then null
                              else jsonb_build_object('id', advertiser_id, 'name', advertiser_name) end,
           'advertisers', advertisers,
           'connected_at', connected_at)
    from public.tiktok_connections
   where user_id = p_user_id and revoked_at is null;
$$;

-- Claims a state for one request. Answers {"outcome": …}:
--   claimed  this request holds the claim and may exchange the code;
--   done     the same code already completed: "connection" is what is stored now (or null);
--   pending  the same code is being exchanged by another request;
--   used     another code, or another user, holds or completed this state;
--   locked   too many failed attempts on this state.
-- A user missing from auth.users (deleted since its token was issued) raises 23503 (foreign key),
-- before anything is stored.
create or replace function public.tiktok_claim_exchange(
  p_state_nonce text,
  p_user_id uuid,
  p_code_hash text,
  p_claimed_by text
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  max_failed constant integer := 5;
  claim public.tiktok_oauth_exchanges;
begin
  delete from public.tiktok_oauth_exchanges where created_at < now() - interval '1 day';

  insert into public.tiktok_oauth_exchanges as e (state_nonce, user_id, code_hash, claimed_by)
       values (p_state_nonce, p_user_id, p_code_hash, p_claimed_by)
  on conflict (state_nonce) do update
       set code_hash = excluded.code_hash, claimed_by = excluded.claimed_by, status = 'pending', claimed_at = now(),
           failed_attempts = e.failed_attempts + (e.status = 'pending')::integer
     where e.user_id = excluded.user_id
       and (e.status = 'released' or (e.status = 'pending' and e.claimed_at < now() - interval '2 minutes'))
       and e.failed_attempts + (e.status = 'pending')::integer < max_failed
  returning * into claim;
  if found then
    return jsonb_build_object('outcome', 'claimed');
  end if;

  select * into claim from public.tiktok_oauth_exchanges where state_nonce = p_state_nonce;
  if claim.user_id <> p_user_id then
    return jsonb_build_object('outcome', 'used');
  elsif claim.status = 'released' or (claim.status = 'pending' and claim.claimed_at < now() - interval '2 minutes') then
    return jsonb_build_object('outcome', 'locked');
  elsif claim.status = 'pending' and claim.claimed_by = p_claimed_by then
    -- A retried call whose first attempt committed.
    return jsonb_build_object('outcome', 'claimed');
  elsif claim.code_hash <> p_code_hash then
    return jsonb_build_object('outcome', 'used');
  elsif claim.status = 'pending' then
    return jsonb_build_object('outcome', 'pending');
  end if;
  return jsonb_build_object(
    'outcome', 'done',
    'return_to', claim.return_to,
    'connection', public.tiktok_connection_summary(p_user_id));
end;
$$;

-- Gives a failed claim back and counts the failure. Answers {"outcome": …}:
--   released  the claim is released: this request's completion can no longer commit;
--   done      the completion committed before the release: the connection is stored;
--   gone      the claim is not this request's.
-- Safe to repeat: a second call after a committed first one answers 'released' again.
create or replace function public.tiktok_release_exchange(p_state_nonce text, p_claimed_by text) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  claim_status text;
begin
  update public.tiktok_oauth_exchanges
     set status = 'released', failed_attempts = failed_attempts + 1
   where state_nonce = p_state_nonce and claimed_by = p_claimed_by and status = 'pending';
  if found then
    return jsonb_build_object('outcome', 'released');
  end if;
  select status into claim_status
    from public.tiktok_oauth_exchanges
   where state_nonce = p_state_nonce and claimed_by = p_claimed_by;
  return jsonb_build_object('outcome', coalesce(claim_status, 'gone'));
end;
$$;

-- An advertiser list as it is stored: each entry's id and name, in TikTok's order, nothing else
-- (the table's check decides whether they are well formed). Raises 22023 for anything but an
-- array, so a missing list can never read as an empty one.
create or replace function public.tiktok_advertiser_list(p_advertisers jsonb) returns jsonb
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  if jsonb_typeof(p_advertisers) is distinct from 'array' then
    raise exception 'advertisers must be a JSON array, not %', coalesce(jsonb_typeof(p_advertisers), 'null') using errcode = '22023';
  end if;
  return coalesce(
    (select jsonb_agg(jsonb_build_object('id', a -> 'id', 'name', a -> 'name') order by n)
       from jsonb_array_elements(p_advertisers) with ordinality as t(a, n)),
    '[]'::jsonb);
end;
$$;

-- Writes one event; called only from the functions below, inside the change's own transaction, so
-- the event and the change commit or roll back together. Takes the connection's fields one by one
-- (never the row), so the token cannot end up in a payload.
create or replace function public.tiktok_write_event(
  p_user_id uuid,
  p_type text,
  p_occurred_at timestamptz,
  p_connected_at timestamptz,
  p_advertiser_id text,
  p_advertiser_name text,
  p_advertisers jsonb,
  p_extra jsonb
) returns uuid
language plpgsql
security invoker
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
      'advertiser', case when p_advertiser_id is null then null
                         else jsonb_build_object('id', p_advertiser_id, 'name', p_advertiser_name) end,
      'advertisers', p_advertisers));
  return event_id;
end;
$$;

-- Finishes an exchange in one transaction: the connection is stored, its event written and the
-- claim marked done together, or none of them; only by the request that holds the claim, so a late
-- completion of a released (and revoked) attempt can never commit under a retry's claim.
-- p_advertiser_id is the Worker's pick from p_advertisers (TikTok's list, just fetched with the
-- token: verified_at is now). Answers {"outcome": "ok", "connected_at": …, "advertiser": { id, name },
-- "advertisers": […], "event_id": …}, or {"outcome": "claim_lost", "event_id": null}.
--
-- reconnected: a row was stored (live or revoked) and this connection replaced it. A disconnect
-- deletes the row, so the next connection is not a reconnection: the product has been told
-- "disconnected" and starts afresh.
create or replace function public.tiktok_complete_exchange(
  p_state_nonce text,
  p_user_id uuid,
  p_claimed_by text,
  p_access_token text,
  p_advertiser_id text,
  p_advertisers jsonb,
  p_return_to text
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  listed jsonb := public.tiktok_advertiser_list(p_advertisers);
  chosen jsonb;
  connected timestamptz;
  replaced boolean;
  event_id uuid;
begin
  perform 1 from public.tiktok_oauth_exchanges
    where state_nonce = p_state_nonce and user_id = p_user_id and claimed_by = p_claimed_by and status = 'pending'
    for update;
  if not found then
    return jsonb_build_object('outcome', 'claim_lost', 'event_id', null);
  end if;

  select a into chosen from jsonb_array_elements(listed) a where a ->> 'id' = p_advertiser_id limit 1;
  if chosen is null then
    raise exception 'tiktok_complete_exchange: advertiser_id must be one of advertisers' using errcode = '22023';
  end if;

  -- Update, else insert: two completions for one user at the same moment (two tabs) both end
  -- stored, the later one replacing the earlier. clock_timestamp(), not now(): two connections in
  -- one transaction still differ.
  loop
    update public.tiktok_connections
       set access_token = p_access_token, advertiser_id = chosen ->> 'id', advertiser_name = chosen ->> 'name',
           advertisers = listed, connected_at = clock_timestamp(), revoked_at = null, revoked_code = null,
           verified_at = clock_timestamp()
     where user_id = p_user_id
    returning connected_at into connected;
    replaced := found;
    exit when replaced;
    insert into public.tiktok_connections (user_id, access_token, advertiser_id, advertiser_name, advertisers, connected_at, verified_at)
    values (p_user_id, p_access_token, chosen ->> 'id', chosen ->> 'name', listed, clock_timestamp(), clock_timestamp())
    on conflict (user_id) do nothing
    returning connected_at into connected;
    exit when found;
  end loop;

  event_id := public.tiktok_write_event(
    p_user_id, 'tiktok.connection.connected', connected, connected, chosen ->> 'id', chosen ->> 'name', listed,
    jsonb_build_object('reconnected', replaced));

  update public.tiktok_oauth_exchanges
     set status = 'done', return_to = p_return_to
   where state_nonce = p_state_nonce and claimed_by = p_claimed_by;
  return jsonb_build_object('outcome', 'ok', 'connected_at', connected, 'advertiser', chosen, 'advertisers', listed, 'event_id', event_id);
end;
$$;

-- The user picks an advertiser of the connection made at p_connected_at (the one the Worker read,
-- or the selection ticket's). Only an id in the list stored with that connection is accepted: the
-- id comes from the browser. Answers {"outcome": …, "event_id": …}:
--   ok             stored; also "advertiser" and "advertisers". event_id is null when the id was
--                  already the chosen one (nothing changed, nothing to tell);
--   not_allowed    the id is not in the stored list;
--   stale          another connection has replaced the one made at p_connected_at;
--   not_connected  no live connection (never connected, disconnected or revoked).
create or replace function public.tiktok_choose_advertiser(
  p_user_id uuid,
  p_advertiser_id text,
  p_connected_at timestamptz
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  connection record;
  chosen jsonb;
  event_id uuid;
begin
  select advertiser_id, advertisers, connected_at, revoked_at into connection
    from public.tiktok_connections where user_id = p_user_id
    for update;
  if not found or connection.revoked_at is not null then
    return jsonb_build_object('outcome', 'not_connected', 'event_id', null);
  end if;
  if connection.connected_at is distinct from p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;

  select a into chosen from jsonb_array_elements(connection.advertisers) a where a ->> 'id' = p_advertiser_id limit 1;
  if chosen is null then
    return jsonb_build_object('outcome', 'not_allowed', 'event_id', null);
  end if;

  if connection.advertiser_id is distinct from (chosen ->> 'id') then
    update public.tiktok_connections
       set advertiser_id = chosen ->> 'id', advertiser_name = chosen ->> 'name'
     where user_id = p_user_id;
    event_id := public.tiktok_write_event(
      p_user_id, 'tiktok.connection.advertiser_changed', now(), connection.connected_at,
      chosen ->> 'id', chosen ->> 'name', connection.advertisers,
      jsonb_build_object('reason', 'user_choice', 'previous_advertiser_id', connection.advertiser_id));
  end if;
  return jsonb_build_object('outcome', 'ok', 'advertiser', chosen, 'advertisers', connection.advertisers, 'event_id', event_id);
end;
$$;

-- A proxied call TikTok answered with its token (code 0): the connection works, as a sweep check
-- would have found. Recorded at most once per 10 minutes per connection, so a busy product service
-- does not write per call, and the sweep (least recently verified first) passes over connections in
-- use. Answers {"outcome": "recorded" | "recent" | "stale"}: stale when the connection made at
-- p_connected_at is not the live one now.
create or replace function public.tiktok_record_use(p_user_id uuid, p_connected_at timestamptz) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
begin
  update public.tiktok_connections
     set verified_at = now()
   where user_id = p_user_id and connected_at = p_connected_at and revoked_at is null
     and (verified_at is null or verified_at < now() - interval '10 minutes');
  if found then
    return jsonb_build_object('outcome', 'recorded');
  end if;
  return jsonb_build_object('outcome', case when exists (
    select 1 from public.tiktok_connections where user_id = p_user_id and connected_at = p_connected_at and revoked_at is null
  ) then 'recent' else 'stale' end);
end;
$$;

-- The next live connections to check at TikTok, least recently taken first (never taken first),
-- at most p_limit (capped at 1000; null or negative: none), with the stored token (sealed, as
-- stored: the Worker opens it) and connected_at (pass it back to tiktok_record_verification or
-- tiktok_mark_revoked, so an answer about an old token never touches a newer connection).
--
-- A lease: handing a connection out sets its verified_at, and rows locked by a concurrent call are
-- skipped, so overlapping sweep runs (a slow run still going when the next cron fires, or the same
-- cron delivered twice) take different connections instead of checking the same ones twice against
-- the app's TikTok quota. A run that dies after taking its batch leaves those connections
-- unchecked until their turn comes round again: a full cycle late, never lost.
create or replace function public.tiktok_sweep_batch(p_limit integer)
returns table (user_id uuid, connected_at timestamptz, access_token text)
language sql
security invoker
set search_path = ''
as $$
  with picked as (
    select c.user_id, c.verified_at as taken_before
      from public.tiktok_connections c
     where c.revoked_at is null
     order by c.verified_at nulls first, c.user_id
     limit least(greatest(coalesce(p_limit, 0), 0), 1000)
       for update skip locked
  ), leased as (
    update public.tiktok_connections c
       set verified_at = now()
      from picked
     where c.user_id = picked.user_id
    returning c.user_id, c.connected_at, c.access_token, picked.taken_before
  )
  select leased.user_id, leased.connected_at, leased.access_token from leased order by taken_before nulls first, leased.user_id;
$$;

-- The sweep's answer for one connection: TikTok's advertiser list for its token, fetched now.
-- Answers {"outcome": …, "event_id": …}:
--   ok                  still live; the stored list is replaced by TikTok's (added, removed or
--                       renamed advertisers; the chosen one's name follows): no event, because what
--                       the product acts on, the chosen advertiser, has not changed;
--   advertiser_removed  the chosen advertiser is no longer in the list: the choice is cleared and
--                       event advertiser_changed, reason advertiser_removed, previous_advertiser_id;
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
security invoker
set search_path = ''
as $$
declare
  listed jsonb := public.tiktok_advertiser_list(p_advertisers);
  connection record;
  chosen jsonb;
  event_id uuid;
begin
  select advertiser_id, advertiser_name, advertisers, connected_at into connection
    from public.tiktok_connections
   where user_id = p_user_id and revoked_at is null
   for update;
  if not found or connection.connected_at is distinct from p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;

  if jsonb_array_length(listed) = 0 then
    update public.tiktok_connections set revoked_at = now(), verified_at = now() where user_id = p_user_id;
    event_id := public.tiktok_write_event(
      p_user_id, 'tiktok.connection.revoked', now(), connection.connected_at,
      connection.advertiser_id, connection.advertiser_name, connection.advertisers,
      jsonb_build_object('detected_by', 'sweep', 'code', null));
    return jsonb_build_object('outcome', 'revoked', 'event_id', event_id);
  end if;

  select a into chosen from jsonb_array_elements(listed) a where a ->> 'id' = connection.advertiser_id limit 1;
  if connection.advertiser_id is not null and chosen is null then
    update public.tiktok_connections
       set advertisers = listed, advertiser_id = null, advertiser_name = null, verified_at = now()
     where user_id = p_user_id;
    event_id := public.tiktok_write_event(
      p_user_id, 'tiktok.connection.advertiser_changed', now(), connection.connected_at, null, null, listed,
      jsonb_build_object('reason', 'advertiser_removed', 'previous_advertiser_id', connection.advertiser_id));
    return jsonb_build_object('outcome', 'advertiser_removed', 'event_id', event_id);
  end if;

  update public.tiktok_connections
     set advertisers = listed, advertiser_name = chosen ->> 'name', verified_at = now()
   where user_id = p_user_id;
  return jsonb_build_object('outcome', 'ok', 'event_id', null);
end;
$$;

-- TikTok refused the token of the connection made at p_connected_at (p_code: TikTok's error code;
-- which codes mean "revoked" is the Worker's call), noticed by p_detected_by: verify (the user's
-- ?verify=true), sweep or proxy (a product call through the Worker). Marks it revoked once: the
-- first caller writes the event, later ones change nothing. Answers {"outcome": …, "event_id": …}:
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
security invoker
set search_path = ''
as $$
declare
  connection record;
  event_id uuid;
begin
  if p_detected_by is null or p_detected_by not in ('verify', 'sweep', 'proxy') then
    raise exception 'tiktok_mark_revoked: detected_by must be verify, sweep or proxy, not %', p_detected_by using errcode = '22023';
  end if;
  select advertiser_id, advertiser_name, advertisers, connected_at, revoked_at into connection
    from public.tiktok_connections where user_id = p_user_id
    for update;
  if not found then
    return jsonb_build_object('outcome', 'not_connected', 'event_id', null);
  end if;
  if connection.connected_at is distinct from p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;
  if connection.revoked_at is not null then
    return jsonb_build_object('outcome', 'already_revoked', 'event_id', null);
  end if;

  update public.tiktok_connections set revoked_at = now(), revoked_code = p_code where user_id = p_user_id;
  event_id := public.tiktok_write_event(
    p_user_id, 'tiktok.connection.revoked', now(), connection.connected_at,
    connection.advertiser_id, connection.advertiser_name, connection.advertisers,
    jsonb_build_object('detected_by', p_detected_by, 'code', p_code));
  return jsonb_build_object('outcome', 'ok', 'event_id', event_id);
end;
$$;

-- Forgets the connection, as the user's disconnect does after revoking at TikTok: the row is
-- deleted, and its event keeps what it was. p_revoked_at_tiktok: whether TikTok confirmed the
-- revocation. p_connected_at (optional): the connection the Worker revoked; when given, a newer
-- connection made meanwhile (another tab) is left alone rather than deleted with a live grant at
-- TikTok and reported as revoked. Answers {"outcome": …, "event_id": …}:
--   ok             deleted: event disconnected;
--   not_connected  nothing was stored: no event;
--   stale          p_connected_at given and another connection is stored now: nothing changed.
create or replace function public.tiktok_disconnect(
  p_user_id uuid,
  p_revoked_at_tiktok boolean,
  p_connected_at timestamptz default null
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  connection record;
  event_id uuid;
begin
  select advertiser_id, advertiser_name, advertisers, connected_at into connection
    from public.tiktok_connections where user_id = p_user_id
    for update;
  if not found then
    return jsonb_build_object('outcome', 'not_connected', 'event_id', null);
  end if;
  if p_connected_at is not null and connection.connected_at <> p_connected_at then
    return jsonb_build_object('outcome', 'stale', 'event_id', null);
  end if;

  delete from public.tiktok_connections where user_id = p_user_id;
  event_id := public.tiktok_write_event(
    p_user_id, 'tiktok.connection.disconnected', now(), connection.connected_at,
    connection.advertiser_id, connection.advertiser_name, connection.advertisers,
    jsonb_build_object('revoked_at_tiktok', coalesce(p_revoked_at_tiktok, false)));
  return jsonb_build_object('outcome', 'ok', 'event_id', event_id);
end;
$$;

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
security invoker
set search_path = ''
as $$
  select e.id, e.type, e.created_at, e.attempts
    from public.tiktok_connection_events e
   where e.delivered_at is null and e.created_at < now() - p_older_than
   order by e.created_at, e.id
   limit least(greatest(coalesce(p_limit, 0), 0), 1000);
$$;

-- For the queue consumer: {"id", "type", "payload", "attempts", "created_at"} of an undelivered
-- event; null when it was delivered meanwhile (a re-enqueued duplicate) or pruned. The payload is
-- what is sent, byte for byte as the consumer serialises it: nothing here adds or drops a field.
create or replace function public.tiktok_event_for_delivery(p_id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('id', e.id, 'type', e.type, 'payload', e.payload, 'attempts', e.attempts, 'created_at', e.created_at)
    from public.tiktok_connection_events e
   where e.id = p_id and e.delivered_at is null;
$$;

-- The receiver accepted it. attempts counts this one too. Answers {"outcome": "ok" |
-- "already_delivered" | "not_found"}; a second call changes nothing (delivered_at stays the first).
create or replace function public.tiktok_mark_event_delivered(p_id uuid) returns jsonb
language plpgsql
security invoker
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

-- A failed delivery: counts it and keeps the error's first 500 characters (a status line and a
-- reason; never the request, which carries the signature). Answers {"outcome": "ok",
-- "attempts": n} (for the caller's back-off), or {"outcome": "already_delivered" | "not_found",
-- "attempts": null}: a late failure never un-delivers an event.
create or replace function public.tiktok_record_event_failure(p_id uuid, p_error text) returns jsonb
language plpgsql
security invoker
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

-- Deletes delivered events created more than p_keep ago; undelivered ones stay whatever their age
-- (an event is dropped only once the product has it). Answers how many were deleted.
create or replace function public.tiktok_prune_events(p_keep interval default interval '30 days') returns integer
language plpgsql
security invoker
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


-- ── Grants ──────────────────────────────────────────────────────────────────────────────────────

-- Supabase's default privileges grant ALL on every new table, view and function in public to anon
-- and authenticated, PostgreSQL grants EXECUTE on functions to PUBLIC, and a project may have added
-- defaults of its own, for roles a browser role may inherit. So every grant on the connector's
-- objects is taken back, from whoever holds it but the owner; then only these are made, the same
-- however often this file runs:
--   service_role   SELECT, INSERT, UPDATE, DELETE on the tables; SELECT on the view; EXECUTE on every function;
--   authenticated  SELECT on the view, and on the view's columns of tiktok_connections (security_invoker
--                  reads them as the user; the policy above limits it to its own row).
-- Last, what PostgreSQL says each browser role, and each role it may act as, may do is checked:
-- anything more (possible only through a role it may act as: the owner, a predefined role such as
-- pg_read_all_data) stops the file with an error.
do $$
declare
  tables constant regclass[] := array['public.tiktok_connections', 'public.tiktok_oauth_exchanges', 'public.tiktok_connection_events'];
  status_view constant regclass := 'public.tiktok_connection_status';
  functions constant regprocedure[] := array[
    'public.tiktok_connect_schema()',
    'public.tiktok_connection_summary(uuid)',
    'public.tiktok_claim_exchange(text, uuid, text, text)',
    'public.tiktok_release_exchange(text, text)',
    'public.tiktok_advertiser_list(jsonb)',
    'public.tiktok_write_event(uuid, text, timestamptz, timestamptz, text, text, jsonb, jsonb)',
    'public.tiktok_complete_exchange(text, uuid, text, text, text, jsonb, text)',
    'public.tiktok_choose_advertiser(uuid, text, timestamptz)',
    'public.tiktok_sweep_batch(integer)',
    'public.tiktok_record_verification(uuid, timestamptz, jsonb)',
    'public.tiktok_record_use(uuid, timestamptz)',
    'public.tiktok_mark_revoked(uuid, text, integer, timestamptz)',
    'public.tiktok_disconnect(uuid, boolean, timestamptz)',
    'public.tiktok_events_to_deliver(interval, integer)',
    'public.tiktok_event_for_delivery(uuid)',
    'public.tiktok_mark_event_delivered(uuid)',
    'public.tiktok_record_event_failure(uuid, text)',
    'public.tiktok_prune_events(interval)'];
  object regclass;
  fn regprocedure;
  holder text;
  role_name text;
  acting text;
  reader boolean;
  via text;
begin
  foreach object in array tables || status_view loop
    -- Table grants and column grants are separate lists; revoking a table's revokes its columns' too.
    for holder in
      select distinct case a.grantee when 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end
        from pg_class c
        cross join lateral (select (aclexplode(c.relacl)).grantee
                            union
                            select (aclexplode(attacl)).grantee from pg_attribute where attrelid = c.oid) a
       where c.oid = object and a.grantee <> c.relowner
    loop
      execute format('revoke all on %s from %s', object, holder);
    end loop;
  end loop;
  foreach object in array tables loop
    execute format('grant select, insert, update, delete on %s to service_role', object);
  end loop;
  execute format('grant select on %s to service_role, authenticated', status_view);
  grant select (user_id, advertiser_id, advertiser_name, advertisers, connected_at, revoked_at, verified_at)
    on public.tiktok_connections to authenticated;

  foreach fn in array functions loop
    -- A function without an ACL has PostgreSQL's default one: EXECUTE for PUBLIC.
    execute format('revoke all on function %s from public', fn);
    for holder in
      select distinct quote_ident(pg_get_userbyid(a.grantee))
        from pg_proc p, aclexplode(p.proacl) a
       where p.oid = fn and a.grantee not in (0, p.proowner)
    loop
      execute format('revoke all on function %s from %s', fn, holder);
    end loop;
    execute format('grant execute on function %s to service_role', fn);
  end loop;

  -- Each browser role, and each role it may act as: MEMBER, not only inherited, since a NOINHERIT
  -- member (as Supabase makes its roles) may still SET ROLE. Only authenticated itself may read, and
  -- only the status.
  foreach role_name in array array['anon', 'authenticated'] loop
    for acting in select rolname from pg_roles where pg_has_role(role_name, oid, 'MEMBER') loop
      reader := acting = 'authenticated';
      via := case when acting = role_name then role_name else format('%s (as %s)', role_name, acting) end;
      if has_column_privilege(acting, 'public.tiktok_connections', 'access_token', 'SELECT, REFERENCES') then
        raise exception '% may read public.tiktok_connections.access_token', via;
      end if;
      foreach object in array tables || status_view loop
        if has_table_privilege(acting, object, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
           or has_any_column_privilege(acting, object, 'INSERT, UPDATE, REFERENCES')
           or (has_any_column_privilege(acting, object, 'SELECT') and not (reader and object in (tables[1], status_view))) then
          raise exception '% holds a privilege on % that only service_role may hold', via, object;
        end if;
      end loop;
      foreach fn in array functions loop
        if has_function_privilege(acting, fn, 'EXECUTE') then
          raise exception '% may execute %', via, fn;
        end if;
      end loop;
    end loop;
  end loop;
end;
$$;
