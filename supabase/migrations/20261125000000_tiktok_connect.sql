-- tiktok-connect-edge: what the Worker needs in the product's database. Idempotent: safe to apply
-- again (every statement checks or replaces). The migrations are one set, applied in order: a later
-- one replaces the completion function defined here.

-- The connection lives on the product's existing user_accounts row; other services read it there.
alter table public.user_accounts
  add column if not exists tiktok_access_token text,
  add column if not exists tiktok_business_id text,
  add column if not exists tiktok_account_id text,
  add column if not exists tiktok_advertisers jsonb,
  add column if not exists tiktok_connected_at timestamptz,
  add column if not exists tiktok_revoked_at timestamptz;

comment on column public.user_accounts.tiktok_access_token is
  'TikTok advertiser token: plaintext, or enc:v1:<kid>:<iv>:<ciphertext> when TOKEN_ENCRYPTION_KEY is set. Server roles only.';
comment on column public.user_accounts.tiktok_advertisers is
  'Every advertiser the token may manage: [{"id": "<decimal string>", "name": "..."}].';

-- One row per state that reached the code exchange. The primary key is what makes a state
-- single-use: of two concurrent exchanges of one state, exactly one INSERT succeeds.
create table if not exists public.tiktok_oauth_exchanges (
  state_nonce text primary key,
  user_id uuid not null references public.user_accounts (id) on delete cascade,
  code_hash text not null,
  claimed_by text not null,
  status text not null default 'pending' check (status in ('pending', 'done')),
  result jsonb,
  created_at timestamptz not null default now()
);
create index if not exists tiktok_oauth_exchanges_user_created on public.tiktok_oauth_exchanges (user_id, created_at);

-- Only the Worker's server key touches exchanges: RLS on with no policy denies every API role.
alter table public.tiktok_oauth_exchanges enable row level security;
revoke all on public.tiktok_oauth_exchanges from public, anon, authenticated;
grant select, insert, update, delete on public.tiktok_oauth_exchanges to service_role;

-- Finishes an exchange in one transaction: the connection is written and the claim marked done
-- together, or neither. Answers 'ok', 'claim_lost' or 'account_not_found'.
create or replace function public.tiktok_complete_exchange(
  p_state_nonce text,
  p_user_id uuid,
  p_access_token text,
  p_business_id text,
  p_account_id text,
  p_advertisers jsonb,
  p_result jsonb
) returns text
language plpgsql
set search_path = ''
as $$
begin
  perform 1 from public.tiktok_oauth_exchanges
    where state_nonce = p_state_nonce and user_id = p_user_id and status = 'pending'
    for update;
  if not found then
    return 'claim_lost';
  end if;

  update public.user_accounts
     set tiktok_access_token = p_access_token,
         tiktok_business_id = p_business_id,
         tiktok_account_id = p_account_id,
         tiktok_advertisers = p_advertisers,
         tiktok_connected_at = now(),
         tiktok_revoked_at = null
   where id = p_user_id;
  if not found then
    return 'account_not_found';
  end if;

  update public.tiktok_oauth_exchanges set status = 'done', result = p_result where state_nonce = p_state_nonce;
  -- A state lives ten minutes; older claims guard nothing.
  delete from public.tiktok_oauth_exchanges where user_id = p_user_id and created_at < now() - interval '1 day';
  return 'ok';
end;
$$;
revoke all on function public.tiktok_complete_exchange(text, uuid, text, text, text, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.tiktok_complete_exchange(text, uuid, text, text, text, jsonb, jsonb) to service_role;

-- The token is unreadable and unwritable for the browser roles, while whatever they could read or
-- write before stays readable or writable. A table-level grant covers every column, so where a role
-- holds one it is replaced by column grants of everything but the token (for UPDATE: but any
-- tiktok_ column). Nothing is granted that the role did not have. Columns added to user_accounts
-- later need their own grant.
do $$
declare
  role_name text;
  privilege text;
  columns text;
begin
  foreach role_name in array array['anon', 'authenticated'] loop
    if not exists (select 1 from pg_roles where rolname = role_name) then
      continue;
    end if;
    foreach privilege in array array['SELECT', 'UPDATE'] loop
      if has_table_privilege(role_name, 'public.user_accounts', privilege) then
        select string_agg(quote_ident(column_name), ', ' order by ordinal_position)
          into columns
          from information_schema.columns
         where table_schema = 'public' and table_name = 'user_accounts'
           and column_name <> 'tiktok_access_token'
           and (privilege = 'SELECT' or column_name not like 'tiktok\_%');
        execute format('revoke %s on public.user_accounts from %I', privilege, role_name);
        if columns is not null then
          execute format('grant %s (%s) on public.user_accounts to %I', privilege, columns, role_name);
        end if;
      end if;
      -- Even a column grant made by hand elsewhere does not expose the token.
      execute format('revoke %s (tiktok_access_token) on public.user_accounts from %I', privilege, role_name);
    end loop;
  end loop;
end;
$$;

grant select, update on public.user_accounts to service_role;
