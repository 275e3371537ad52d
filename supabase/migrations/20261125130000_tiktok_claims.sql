-- tiktok-connect-edge: exchange claims as a small state machine, decided in one statement each.
-- Idempotent, like the first migration. Apply it together with the Worker version that calls these
-- functions: it replaces the seven-argument tiktok_complete_exchange.
--
--   (none) --claim--> pending --complete--> done
--                        |
--                        +--release--> released --claim (fewer than 5 failures)--> pending
--
-- A released claim counts a failed attempt; after five, the state is locked and the user starts
-- again. The count lives here, not in a Worker isolate, so it holds however many isolates serve the
-- attempts. Only the request holding a claim (claimed_by, a random id the Worker makes per request)
-- can complete or release it. A claim left pending for two minutes (its request was cancelled; a
-- Worker request never runs that long) counts as released.
--
-- The three files are one set: applied again, the first one alone would bring back the completion
-- function this one replaces; applied in order (as `supabase db push` does) they end here.

alter table public.tiktok_oauth_exchanges
  add column if not exists failed_attempts integer not null default 0,
  add column if not exists claimed_at timestamptz not null default now();
create index if not exists tiktok_oauth_exchanges_created on public.tiktok_oauth_exchanges (created_at);
alter table public.tiktok_oauth_exchanges drop constraint if exists tiktok_oauth_exchanges_status_check;
alter table public.tiktok_oauth_exchanges
  add constraint tiktok_oauth_exchanges_status_check check (status in ('pending', 'done', 'released'));

comment on column public.tiktok_oauth_exchanges.claimed_by is
  'A random id the Worker generates per request; never taken from a request header.';

-- What a replayed callback answers: the connection as stored now (the user may have chosen another
-- advertiser since), not the one the first answer carried. Null when there is no live connection.
create or replace function public.tiktok_connection_summary(p_user_id uuid) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
           'business_id', tiktok_business_id,
           'account_id', tiktok_account_id,
           'advertisers', coalesce(tiktok_advertisers, '[]'::jsonb),
           'connected_at', tiktok_connected_at)
    from public.user_accounts
   where id = p_user_id and tiktok_connected_at is not null and tiktok_revoked_at is null;
$$;
revoke all on function public.tiktok_connection_summary(uuid) from public, anon, authenticated;
grant execute on function public.tiktok_connection_summary(uuid) to service_role;

-- Claims a state for one request. Answers {"outcome": …}:
--   claimed  this request holds the claim and may exchange the code;
--   done     the same code already completed: "connection" is what is stored now (or null);
--   pending  the same code is being exchanged by another request;
--   used     another code, or another user, holds or completed this state;
--   locked   too many failed attempts on this state.
-- A user without a user_accounts row raises 23503 (foreign key), before anything is stored.
create or replace function public.tiktok_claim_exchange(
  p_state_nonce text,
  p_user_id uuid,
  p_code_hash text,
  p_claimed_by text
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  max_failed constant integer := 5;
  claim public.tiktok_oauth_exchanges;
begin
  -- A state lives ten minutes; claims older than a day guard nothing.
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
    'return_to', claim.result ->> 'return_to',
    'connection', public.tiktok_connection_summary(p_user_id));
end;
$$;
revoke all on function public.tiktok_claim_exchange(text, uuid, text, text) from public, anon, authenticated;
grant execute on function public.tiktok_claim_exchange(text, uuid, text, text) to service_role;

-- Gives a failed claim back and counts the failure. Answers {"outcome": …}:
--   released  the claim is released: this request's completion can no longer commit;
--   done      the completion committed before the release: the connection is stored;
--   gone      the claim is not this request's.
-- Safe to repeat: a second call after a committed first one answers 'released' again.
create or replace function public.tiktok_release_exchange(p_state_nonce text, p_claimed_by text) returns jsonb
language plpgsql
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
revoke all on function public.tiktok_release_exchange(text, text) from public, anon, authenticated;
grant execute on function public.tiktok_release_exchange(text, text) to service_role;

-- Finishes an exchange in one transaction: the connection is written and the claim marked done
-- together, or neither; only by the request that holds the claim, so a late completion of a
-- released (and revoked) attempt can never commit under a retry's claim. p_result is the exchange's
-- answer: business_id, account_id, advertisers, return_to. Answers {"outcome": "ok",
-- "connected_at": …} (the connection's identity: a selection ticket is bound to it), or
-- {"outcome": "claim_lost" | "account_not_found"}.
drop function if exists public.tiktok_complete_exchange(text, uuid, text, text, text, jsonb, jsonb);
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
  connected timestamptz;
begin
  perform 1 from public.tiktok_oauth_exchanges
    where state_nonce = p_state_nonce and user_id = p_user_id and claimed_by = p_claimed_by and status = 'pending'
    for update;
  if not found then
    return jsonb_build_object('outcome', 'claim_lost');
  end if;

  update public.user_accounts
     set tiktok_access_token = p_access_token,
         tiktok_business_id = p_result ->> 'business_id',
         tiktok_account_id = p_result ->> 'account_id',
         tiktok_advertisers = p_result -> 'advertisers',
         -- clock_timestamp(), not now(): two connections in one transaction still differ.
         tiktok_connected_at = clock_timestamp(),
         tiktok_revoked_at = null
   where id = p_user_id
  returning tiktok_connected_at into connected;
  if not found then
    return jsonb_build_object('outcome', 'account_not_found');
  end if;

  update public.tiktok_oauth_exchanges
     set status = 'done', result = jsonb_build_object('return_to', p_result ->> 'return_to')
   where state_nonce = p_state_nonce and claimed_by = p_claimed_by;
  return jsonb_build_object('outcome', 'ok', 'connected_at', connected);
end;
$$;
revoke all on function public.tiktok_complete_exchange(text, uuid, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.tiktok_complete_exchange(text, uuid, text, text, jsonb) to service_role;
