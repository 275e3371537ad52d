// Shared by the PostgreSQL tests: the product's database as it stands before the migrations.

export const ALICE = '11111111-1111-4111-8111-111111111111'
export const BOB = '22222222-2222-4222-8222-222222222222'

// The product's database before the migration, as Supabase sets one up: the three API roles,
// default privileges that grant them every table, auth.uid() reading the JWT's subject the way
// PostgREST passes it, and row-level security with own-row policies for authenticated.
export const SEED = `
create role anon nologin;
create role authenticated nologin;
create role service_role nologin bypassrls;
create schema auth;
grant usage on schema auth to anon, authenticated, service_role;
create function auth.uid() returns uuid language sql stable as $$
  select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid
$$;
create table public.user_accounts (id uuid primary key, email text, display_name text, tiktok_access_token text, tiktok_business_id text, tiktok_account_id text);
grant all on public.user_accounts to anon, authenticated, service_role;
alter table public.user_accounts enable row level security;
create policy own_row_insert on public.user_accounts for insert to authenticated with check (id = auth.uid());
create policy own_row_select on public.user_accounts for select to authenticated using (id = auth.uid());
create policy own_row_update on public.user_accounts for update to authenticated using (id = auth.uid()) with check (id = auth.uid());
insert into public.user_accounts (id, email) values ('${ALICE}', 'alice@example.com'), ('${BOB}', 'bob@example.com');
`
