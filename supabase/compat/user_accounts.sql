-- tiktok-connect-edge, opt-in: the connection also on public.user_accounts, for products whose other
-- services read tiktok_access_token, tiktok_business_id and tiktok_account_id there, as they did
-- with the integration this Worker replaces. Not a migration: apply it yourself, after
-- supabase/migrations, and only if something reads those columns; new code should read
-- public.tiktok_connections instead. Apply it as one transaction (the SQL editor does; psql: -1),
-- so that a refusal leaves nothing behind. Applied again, it changes nothing.
--
-- From then on a trigger on public.tiktok_connections keeps, on the user_accounts row whose id is
-- the user's id (a user without such a row is simply not copied):
--   tiktok_access_token  the token as stored: plaintext, or enc:v1:… with TOKEN_ENCRYPTION_KEY
--                        (decryptToken in src/token-crypto.ts opens both);
--   tiktok_business_id   the chosen advertiser's id;
--   tiktok_account_id    the chosen advertiser's name (what the original integration kept there);
-- all three null while the connection is revoked or gone, and the two advertiser columns null
-- while no advertiser is chosen. Existing connections are copied now; a user the connector has no
-- connection for keeps whatever the columns held.
--
-- This is the one place the connector touches a product table, so it checks what the product's
-- grants allow. Holding SELECT on tiktok_access_token, or INSERT or UPDATE on any tiktok_ column,
-- a browser role (anon, authenticated) could read its own token, or plant a token or an advertiser
-- that other services would then use. Column grants of tiktok_ columns made to those roles are
-- revoked here; any other way to hold them (a table-level grant, one to PUBLIC, one to a role they
-- may act as) is the product's to change: the file names it and refuses to finish.

do $$
begin
  if to_regclass('public.tiktok_connections') is null then
    raise exception 'apply supabase/migrations first: public.tiktok_connections does not exist';
  end if;
  if not exists (select 1 from information_schema.columns
                  where table_schema = 'public' and table_name = 'user_accounts' and column_name = 'id' and data_type = 'uuid') then
    raise exception 'public.user_accounts (id uuid, the auth user''s id) does not exist: this file is only for products that have it';
  end if;
end;
$$;

alter table public.user_accounts
  add column if not exists tiktok_access_token text,
  add column if not exists tiktok_business_id text,
  add column if not exists tiktok_account_id text;

-- Security invoker: it runs as whoever changes tiktok_connections, which only service_role (and
-- the owner) may do; the grant below gives service_role what it writes.
create or replace function public.tiktok_compat_user_accounts() returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  -- NEW is null for a delete.
  live constant boolean := tg_op <> 'DELETE' and new.revoked_at is null;
  token constant text := case when live then new.access_token end;
  advertiser_id constant text := case when live then new.advertiser_id end;
  advertiser_name constant text := case when live then new.advertiser_name end;
begin
  update public.user_accounts
     set tiktok_access_token = token, tiktok_business_id = advertiser_id, tiktok_account_id = advertiser_name
   where id = coalesce(new.user_id, old.user_id)
     and (tiktok_access_token, tiktok_business_id, tiktok_account_id) is distinct from (token, advertiser_id, advertiser_name);
  return null;
end;
$$;

do $$
declare
  fn constant regprocedure := 'public.tiktok_compat_user_accounts()';
  holder text;
  api_role text;
  acting text;
  col text;
  privilege text;
  how text;
  tiktok_columns text;
begin
  -- Nobody calls a trigger function; Supabase's default privileges granted it to the API roles anyway.
  execute format('revoke all on function %s from public', fn);
  for holder in
    select distinct quote_ident(pg_get_userbyid(a.grantee)) from pg_proc p, aclexplode(p.proacl) a
     where p.oid = fn and a.grantee not in (0, p.proowner)
  loop
    execute format('revoke all on function %s from %s', fn, holder);
  end loop;

  -- What the trigger reads and writes, as service_role; granted only where it is missing.
  if not has_column_privilege('service_role', 'public.user_accounts', 'id', 'SELECT') then
    grant select (id) on public.user_accounts to service_role;
  end if;
  foreach col in array array['tiktok_access_token', 'tiktok_business_id', 'tiktok_account_id'] loop
    if not has_column_privilege('service_role', 'public.user_accounts', col, 'UPDATE') then
      execute format('grant update (%I) on public.user_accounts to service_role', col);
    end if;
  end loop;

  -- The browser roles' own column grants that open the token or a write: never needed, always a
  -- hole. (Reading the advertiser columns is the product's call.) REFERENCES on the token would let
  -- a foreign key test guesses of it.
  revoke select (tiktok_access_token), references (tiktok_access_token) on public.user_accounts from anon, authenticated;
  select string_agg(quote_ident(column_name), ', ') into tiktok_columns
    from information_schema.columns
   where table_schema = 'public' and table_name = 'user_accounts' and column_name like 'tiktok\_%';
  execute format('revoke insert (%s), update (%s) on public.user_accounts from anon, authenticated', tiktok_columns, tiktok_columns);

  -- What is left, as PostgreSQL decides it, for each browser role and each role it may act as
  -- (MEMBER: Supabase makes its roles NOINHERIT, and a member may still SET ROLE).
  foreach api_role in array array['anon', 'authenticated'] loop
    for acting in select rolname from pg_roles where pg_has_role(api_role, oid, 'MEMBER') loop
      for col, privilege in
        select column_name, p from information_schema.columns, unnest(array['SELECT', 'REFERENCES', 'INSERT', 'UPDATE']) with ordinality as t(p, n)
         where table_schema = 'public' and table_name = 'user_accounts' and column_name like 'tiktok\_%'
           and (column_name = 'tiktok_access_token' or p in ('INSERT', 'UPDATE'))
         order by ordinal_position, n
      loop
        continue when not has_column_privilege(acting, 'public.user_accounts', col, privilege);
        how := case
          when has_column_privilege('public', 'public.user_accounts', col, privilege) then 'granted to PUBLIC'
          when acting <> api_role then format('as %I, a role %I is a member of', acting, api_role)
          when exists (select 1 from pg_class c, aclexplode(c.relacl) a
                        where c.oid = 'public.user_accounts'::regclass and a.grantee = api_role::regrole and a.privilege_type = privilege) then format(
            'a table-level grant to %I: replace it with %s on the columns it needs, none of them tiktok_ ones', api_role, privilege)
          else 'through a role it inherits' end;
        raise exception '% may % public.user_accounts.% (%): change that grant, then apply this file again', api_role, privilege, col, how;
      end loop;
    end loop;
  end loop;
end;
$$;

create or replace trigger tiktok_compat_user_accounts
  after insert or update or delete on public.tiktok_connections
  for each row execute function public.tiktok_compat_user_accounts();

-- The connections stored before this file, copied once by the trigger itself (one mapping): an
-- update that changes no value still fires it.
update public.tiktok_connections set user_id = user_id;
