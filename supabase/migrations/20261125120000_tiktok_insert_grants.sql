-- tiktok-connect-edge: close INSERT on the connection columns for the browser roles. Idempotent:
-- safe to apply again, like 20261125000000_tiktok_connect.sql, whose grant loop covered SELECT and
-- UPDATE only.
--
-- Why: with Supabase's default grants (ALL on every table to anon and authenticated) and an
-- own-row insert policy (with check (id = auth.uid())), a new user could insert its own
-- user_accounts row with a planted tiktok_access_token, a chosen tiktok_business_id and
-- tiktok_connected_at, which the Worker would then report as connected. Row-level security checks
-- which row; only column privileges decide which columns.
--
-- What: where anon or authenticated holds a table-level INSERT (which covers every column, present
-- and future), it is replaced by column INSERT grants of every column except the tiktok_ ones.
-- Nothing is granted that the role did not have. Then INSERT on each tiktok_ column is revoked,
-- even if granted by hand. Because the grants are now per column, a column added by a later
-- migration is not insertable by these roles unless that migration grants it (nor readable or
-- updatable: the first migration made those column grants too). A tiktok_ column must stay
-- ungranted; any other new column the browser needs must be granted explicitly.
--
-- REFERENCES, the other privilege that can be held per column, gets the same treatment. It only
-- lets a role declare a foreign key from a table it owns to the column, which needs a unique
-- constraint on the column (none on tiktok_ columns today) and CREATE on some schema (Supabase's
-- API roles have USAGE only, and PostgREST runs no DDL), so it is not exploitable now. But such a
-- foreign key is an existence oracle that bypasses both RLS and column SELECT (the check runs as
-- the referenced table's owner), and the browser roles never need to reference tiktok_ columns;
-- a foreign key to user_accounts(id) keeps working, since id stays granted.
do $$
declare
  role_name text;
  privilege text;
  columns text;
  tiktok_columns text;
  col text;
begin
  select string_agg(quote_ident(column_name), ', ' order by ordinal_position)
    into tiktok_columns
    from information_schema.columns
   where table_schema = 'public' and table_name = 'user_accounts'
     and column_name like 'tiktok\_%';

  foreach role_name in array array['anon', 'authenticated'] loop
    if not exists (select 1 from pg_roles where rolname = role_name) then
      continue;
    end if;
    foreach privilege in array array['INSERT', 'REFERENCES'] loop
      if has_table_privilege(role_name, 'public.user_accounts', privilege) then
        select string_agg(quote_ident(column_name), ', ' order by ordinal_position)
          into columns
          from information_schema.columns
         where table_schema = 'public' and table_name = 'user_accounts'
           and column_name not like 'tiktok\_%';
        execute format('revoke %s on public.user_accounts from %I', privilege, role_name);
        if columns is not null then
          execute format('grant %s (%s) on public.user_accounts to %I', privilege, columns, role_name);
        end if;
      end if;
      -- Even a column grant made by hand elsewhere does not open a tiktok_ column.
      if tiktok_columns is not null then
        execute format('revoke %s (%s) on public.user_accounts from %I', privilege, tiktok_columns, role_name);
      end if;
    end loop;

    -- A grant to PUBLIC or to a role this one inherits from is not removed above: refuse to leave
    -- the hole open silently.
    for col in
      select column_name from information_schema.columns
       where table_schema = 'public' and table_name = 'user_accounts' and column_name like 'tiktok\_%'
    loop
      foreach privilege in array array['INSERT', 'REFERENCES'] loop
        if has_column_privilege(role_name, 'public.user_accounts', col, privilege) then
          raise exception '% still holds % on public.user_accounts.% (granted to PUBLIC or an inherited role): revoke it there', role_name, privilege, col;
        end if;
      end loop;
    end loop;
  end loop;
end;
$$;
