-- The product's database before supabase/migrations, as Supabase sets one up: the three API roles,
-- Supabase's default privileges (whatever is created in public is granted to all three, so a
-- forgotten revoke shows), auth.uid() reading the JWT's subject the way PostgREST passes it, and the
-- product's own user_accounts table with own-row RLS policies.
-- The sandbox (PGlite) and the PostgreSQL 15 migration tests both start from this file.
create role anon nologin;
create role authenticated nologin;
create role service_role nologin bypassrls;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;
create schema auth;
grant usage on schema auth to anon, authenticated, service_role;
-- Supabase's definition: PostgREST 10+ sets request.jwt.claims, older versions the single claim.
create function auth.uid() returns uuid language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
create table public.user_accounts (id uuid primary key, email text, display_name text, tiktok_access_token text, tiktok_business_id text, tiktok_account_id text);
grant all on public.user_accounts to anon, authenticated, service_role;
alter table public.user_accounts enable row level security;
create policy own_row_insert on public.user_accounts for insert to authenticated with check (id = auth.uid());
create policy own_row_select on public.user_accounts for select to authenticated using (id = auth.uid());
create policy own_row_update on public.user_accounts for update to authenticated using (id = auth.uid()) with check (id = auth.uid());
