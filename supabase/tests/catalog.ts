// What PostgreSQL's catalog says about a database, as sorted lines of text: compared before and
// after a migration, a difference names the column, grant, policy or trigger that changed.

/**
 * Every table, view and function of the schemas `public` and `auth` on one side of the line: the
 * connector's (`tiktok_`) or everything else. For each: columns (type, nullability, default, column
 * grants), grants, RLS, policies, triggers, constraints, indexes, comments; functions with their
 * definition, grants and security. Then, for everything else, what else a migration could change:
 * the schemas' grants, default privileges, roles and their memberships, and the rows of the tables.
 * A foreign key's own triggers on the table it references are PostgreSQL's (tgisinternal), so a
 * reference to auth.users is not a change to auth.users.
 */
export const catalog = (side: 'connector' | 'product') => {
  const mine = side === 'connector'
  const relation = `(c.relname like 'tiktok\\_%') = ${mine}`
  const routine = `(p.proname like 'tiktok\\_%') = ${mine}`
  const relations = `select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
                      where n.nspname in ('public', 'auth') and c.relkind in ('r', 'v', 'm', 'p', 'f') and ${relation}`
  const lines = [
    `select format('relation %s kind=%s rls=%s force=%s acl=%s comment=%s', c.oid::regclass, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
                   c.relacl, obj_description(c.oid, 'pg_class'))
       from pg_class c where c.oid in (${relations})`,
    `select format('view %s %s options=%s', c.oid::regclass, pg_get_viewdef(c.oid), c.reloptions) from pg_class c where c.relkind = 'v' and c.oid in (${relations})`,
    `select format('column %s.%s %s notnull=%s default=%s acl=%s comment=%s', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attacl, col_description(a.attrelid, a.attnum))
       from pg_attribute a left join pg_attrdef d on (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
      where a.attrelid in (${relations}) and a.attnum > 0 and not a.attisdropped`,
    `select format('policy %s.%s %s %s roles=%s using=%s check=%s', schemaname, tablename, policyname, cmd, roles, qual, with_check)
       from pg_policies where format('%I.%I', schemaname, tablename)::regclass in (${relations})`,
    `select format('trigger %s %s', t.tgrelid::regclass, pg_get_triggerdef(t.oid)) from pg_trigger t where not t.tgisinternal and t.tgrelid in (${relations})`,
    `select format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) from pg_constraint where conrelid in (${relations})`,
    `select format('index %s', pg_get_indexdef(indexrelid)) from pg_index where indrelid in (${relations})`,
    `select format('function %s acl=%s secdef=%s config=%s %s', p.oid::regprocedure, p.proacl, p.prosecdef, p.proconfig, ${mine ? 'pg_get_functiondef(p.oid)' : "''"})
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('public', 'auth') and ${routine}`,
  ]
  if (!mine)
    lines.push(
      `select format('schema %s acl=%s', nspname, nspacl) from pg_namespace where nspname in ('public', 'auth')`,
      `select format('default privileges %s %s %s %s', defaclrole::regrole, defaclnamespace::regnamespace, defaclobjtype, defaclacl) from pg_default_acl`,
      `select format('role %s inherit=%s login=%s bypassrls=%s super=%s', rolname, rolinherit, rolcanlogin, rolbypassrls, rolsuper) from pg_roles where rolname !~ '^pg_'`,
      `select format('member %s of %s', member::regrole, roleid::regrole) from pg_auth_members`,
      `select format('rows auth.users %s', md5(coalesce(string_agg(u::text, ',' order by id), ''))) from auth.users u`,
      `select format('rows %s %s', c.oid::regclass, (xpath('/row/c/text()', query_to_xml(format('select md5(coalesce(string_agg(t::text, %L order by t::text), %L)) as c from %s t', ',', '', c.oid::regclass), false, true, '')))[1]::text)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r' and ${relation}`,
    )
  return `select string_agg(line, E'\\n' order by line) from (${lines.join('\nunion all\n')}) as lines(line)`
}
