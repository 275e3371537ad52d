-- The product's own schema, which the connector must leave as it found it: a profiles table as a
-- new Supabase project makes one (one row per auth user, own-row policies, Supabase's default grants
-- to every API role). It has no user_accounts table. The PostgreSQL 15 tests compare its columns,
-- grants, policies and triggers before and after supabase/migrations; the sandbox's PostgREST
-- contract tests use it as "a product table".
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  display_name text,
  updated_at timestamptz
);
grant all on public.profiles to anon, authenticated, service_role;
alter table public.profiles enable row level security;
create policy own_row_insert on public.profiles for insert to authenticated with check (id = auth.uid());
create policy own_row_select on public.profiles for select to authenticated using (id = auth.uid());
create policy own_row_update on public.profiles for update to authenticated using (id = auth.uid()) with check (id = auth.uid());

-- Supabase's usual way to keep it filled: a profile for every new auth user.
create function public.handle_new_user() returns trigger language plpgsql security definer set search_path = '' as $$
begin
  insert into public.profiles (id, email) values (new.id, new.email);
  return new;
end;
$$;
create trigger on_auth_user_created after insert on auth.users for each row execute function public.handle_new_user();
