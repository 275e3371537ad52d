-- What every Supabase project's database holds before the product or the connector adds anything,
-- as far as either uses it: the three API roles (NOINHERIT, as Supabase makes them), Supabase's
-- default privileges (whatever is created in public is granted to all three, so a forgotten revoke
-- shows), Supabase Auth's users, and auth.uid() reading the JWT's subject the way PostgREST passes
-- it. The sandbox (PGlite) and the PostgreSQL 15 tests start from this file; supabase/migrations
-- must apply on it alone.
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;

create schema auth;
grant usage on schema auth to anon, authenticated, service_role;
-- Supabase Auth's table, reduced to what is read here: the demo users and the tests' users are rows
-- of it. Its API roles hold no privilege on it, as on Supabase.
create table auth.users (
  id uuid primary key,
  email text unique,
  is_anonymous boolean not null default false,
  created_at timestamptz not null default now()
);
-- Supabase's definition: PostgREST 10+ sets request.jwt.claims, older versions the single claim.
create function auth.uid() returns uuid language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
