// PostgREST's REST surface translated to SQL, for the requests a Supabase client makes: the sandbox
// runs the project's real migrations behind it instead of imitating them. What the Worker does not
// use is refused (501), not approximated. PGlite is one connection: statements never run at the same
// time here, so lock waits and races are the PostgreSQL 15 tests' job. Each request is one
// statement under the role its key maps to, and PostgreSQL itself renders the JSON (json_agg), so
// timestamps and numbers read exactly as PostgREST would answer them.

/** One connection's statements: a query with parameters, or a script. */
export type Queries = {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>
  exec(sql: string): Promise<unknown>
}
/** The part of a PostgreSQL client this needs; PGlite fits. */
export type Sql = Queries & { transaction<T>(fn: (tx: Queries) => Promise<T>): Promise<T> }

type Fn = { args: { name: string; type: string }[]; required: number; returnsSet: boolean }
type SchemaCache = { tables: Map<string, Set<string>>; functions: Map<string, Fn[]> }

/** A failure PostgREST itself reports (its PGRSTxxx codes), as opposed to one PostgreSQL raises. */
class PostgrestError extends Error {
  readonly status: number
  readonly code: string
  readonly details: string | null
  readonly hint: string | null
  constructor(status: number, code: string, message: string, details: string | null = null, hint: string | null = null) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
    this.hint = hint
  }
}

const RESERVED = new Set(['select', 'on_conflict', 'columns'])
// PostgREST features the Worker does not use: refused loudly, so a future use cannot pass the tests
// against a sandbox that quietly ignored it.
const UNSUPPORTED = new Set(['order', 'limit', 'offset', 'or', 'and'])
const unsupported = (what: string) =>
  new PostgrestError(501, 'PGRST_SANDBOX', `the sandbox's PostgREST does not implement ${what}; add it to sandbox/postgrest.ts with a contract test`)
const OPERATORS: Record<string, string> = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' }
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`

/** PostgREST's SQLSTATE → HTTP status table ("Errors" in PostgREST's reference). */
export function statusOf(code: string | undefined): number {
  if (!code) return 500
  const exact: Record<string, number> = { '23503': 409, '23505': 409, '25006': 405, P0001: 400, '42883': 404, '42P01': 404, '42501': 403 }
  if (exact[code]) return exact[code]
  const byClass: Record<string, number> = {
    '08': 503,
    '09': 500,
    '0L': 403,
    '0P': 403,
    '25': 500,
    '28': 403,
    '2D': 500,
    '38': 500,
    '39': 500,
    '3B': 500,
    '40': 500,
    '53': 503,
    '54': 500,
    '55': 500,
    '57': 500,
    '58': 500,
    F0: 500,
    HV: 500,
    P0: 500,
    XX: 500,
  }
  return byClass[code.slice(0, 2)] ?? 400
}

async function loadSchema(db: Sql): Promise<SchemaCache> {
  const columns = await db.query<{ table_name: string; column_name: string }>(
    `select c.relname as table_name, a.attname as column_name
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'v', 'p') and a.attnum > 0 and not a.attisdropped`,
  )
  const tables = new Map<string, Set<string>>()
  for (const { table_name, column_name } of columns.rows) tables.set(table_name, (tables.get(table_name) ?? new Set()).add(column_name))
  const procs = await db.query<{ name: string; arg_names: string[] | null; arg_types: string[]; defaults: number; retset: boolean }>(
    `select p.proname as name, p.proargnames as arg_names, array(select format_type(t, null) from unnest(p.proargtypes) t) as arg_types,
            p.pronargdefaults as defaults, p.proretset as retset
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and p.prokind = 'f'`,
  )
  const functions = new Map<string, Fn[]>()
  for (const p of procs.rows) {
    // proargnames also lists OUT arguments; the input ones come first.
    const args = p.arg_types.map((type, i) => ({ name: p.arg_names?.[i] ?? '', type }))
    functions.set(p.name, [...(functions.get(p.name) ?? []), { args, required: args.length - p.defaults, returnsSet: p.retset }])
  }
  return { tables, functions }
}

/** `col=op.value` filters, qualified by `table` so a joined record's columns never shadow them. */
function whereOf(params: URLSearchParams, table: string, columns: Set<string>, args: unknown[]): string {
  const clauses: string[] = []
  for (const [column, expr] of params) {
    if (RESERVED.has(column)) continue
    if (UNSUPPORTED.has(column)) throw unsupported(`\`${column}\``)
    if (!columns.has(column)) throw new PostgrestError(400, '42703', `column ${table}.${column} does not exist`)
    const negate = expr.startsWith('not.')
    const rest = negate ? expr.slice(4) : expr
    const dot = rest.indexOf('.')
    if (dot < 0) throw new PostgrestError(400, 'PGRST100', `"failed to parse filter (${expr})" (line 1, column 1)`)
    const [op, value] = [rest.slice(0, dot), rest.slice(dot + 1)]
    const target = `${table}.${ident(column)}`
    let clause: string
    if (OPERATORS[op]) {
      args.push(value)
      clause = `${target} ${OPERATORS[op]} $${args.length}`
    } else if (op === 'is' && ['null', 'true', 'false'].includes(value)) clause = `${target} is ${value}`
    else if (op === 'in' && value.startsWith('(') && value.endsWith(')')) {
      args.push(
        value
          .slice(1, -1)
          .split(',')
          .map((v) => v.replace(/^"(.*)"$/, '$1')),
      )
      clause = `${target} = any($${args.length})`
    } else throw new PostgrestError(400, 'PGRST100', `"failed to parse filter (${expr})" (line 1, column 1)`)
    clauses.push(negate ? `not (${clause})` : clause)
  }
  return clauses.length ? `where ${clauses.join(' and ')}` : ''
}

function selectList(select: string | null, columns: Set<string>): string {
  if (!select || select === '*') return '*'
  return select
    .split(',')
    .map((c) => c.trim())
    .map((c) => {
      // Embeds, aliases and casts: nothing the Worker sends.
      if (!columns.has(c)) throw new PostgrestError(400, '42703', `column ${c} does not exist`)
      return ident(c)
    })
    .join(', ')
}

const KNOWN_PREFER = new Set(['', 'return=representation', 'return=minimal', 'resolution=ignore-duplicates', 'resolution=merge-duplicates'])
const preferOf = (header: string | null) => {
  const tokens = new Set((header ?? '').split(',').map((t) => t.trim()))
  for (const token of tokens) if (!KNOWN_PREFER.has(token)) throw unsupported(`Prefer: ${token}`)
  return {
    representation: tokens.has('return=representation'),
    ignoreDuplicates: tokens.has('resolution=ignore-duplicates'),
    mergeDuplicates: tokens.has('resolution=merge-duplicates'),
  }
}

/** The rows a statement produces, as one JSON array rendered by PostgreSQL. */
export const jsonRows = (statement: string, list = '*') =>
  `with _q as (${statement}) select coalesce(json_agg(_r), '[]')::text as body from (select ${list} from _q) _r`

async function readJson(request: Request): Promise<unknown> {
  const text = await request.text()
  try {
    return text ? JSON.parse(text) : {}
  } catch {
    throw new PostgrestError(400, 'PGRST102', 'Empty or invalid json')
  }
}

type Answer = { status: number; body: string }

/**
 * `request` (a `/rest/v1/...` URL) answered as PostgREST would. The session must already run as the
 * key's role with its claims set (sqlDatabase does it once): one round trip per request, not four.
 */
export function createPostgrest(db: Sql): ((request: Request) => Promise<Response>) & { reload(): void } {
  let schema: Promise<SchemaCache> | undefined

  async function rpc(
    cache: SchemaCache,
    name: string,
    input: Record<string, unknown>,
    run: (sql: string, args: unknown[]) => Promise<string>,
  ): Promise<Answer> {
    const keys = Object.keys(input)
    const fn = cache.functions
      .get(name)
      ?.find((f) => keys.every((k) => f.args.some((a) => a.name === k)) && f.args.slice(0, f.required).every((a) => keys.includes(a.name)))
    if (!fn)
      throw new PostgrestError(
        404,
        'PGRST202',
        `Could not find the function public.${name}(${keys.sort().join(', ')}) in the schema cache`,
        null,
        'Perhaps you meant to call a function with different arguments',
      )
    const used = fn.args.filter((a) => keys.includes(a.name))
    // Arguments typed by the function's own signature, read from the JSON body in one record.
    const source = used.length ? `jsonb_to_record($1::jsonb) as _a(${used.map((a) => `${ident(a.name)} ${a.type}`).join(', ')})` : '(select) as _a'
    const call = `public.${ident(name)}(${used.map((a) => `${ident(a.name)} := _a.${ident(a.name)}`).join(', ')})`
    const args = used.length ? [JSON.stringify(input)] : []
    const sql = fn.returnsSet
      ? `select coalesce(json_agg(_r), '[]')::text as body from ${source} cross join lateral ${call} as _r`
      : `select to_json(${call})::text as body from ${source}`
    return { status: 200, body: await run(sql, args) }
  }

  async function table(
    cache: SchemaCache,
    request: Request,
    path: string,
    params: URLSearchParams,
    run: (sql: string, args: unknown[]) => Promise<string>,
  ): Promise<Answer> {
    const columns = cache.tables.get(path)
    if (!columns) throw new PostgrestError(404, 'PGRST205', `Could not find the table 'public.${path}' in the schema cache`)
    const name = `public.${ident(path)}`
    const list = selectList(params.get('select'), columns)
    const prefer = preferOf(request.headers.get('prefer'))
    const args: unknown[] = []

    if (request.method === 'GET' || request.method === 'HEAD') {
      const where = whereOf(params, name, columns, args)
      return { status: 200, body: await run(jsonRows(`select * from ${name} ${where}`, list), args) }
    }
    if (request.method === 'DELETE') {
      const where = whereOf(params, name, columns, args)
      return { status: prefer.representation ? 200 : 204, body: await run(jsonRows(`delete from ${name} ${where} returning *`, list), args) }
    }

    const body = await readJson(request)
    const records = (Array.isArray(body) ? body : [body]) as Record<string, unknown>[]
    // PostgREST takes the columns from `columns=` or from the first object's keys.
    const keys = params.get('columns')?.split(',') ?? Object.keys(records[0] ?? {})
    const unknown = keys.find((k) => !columns.has(k))
    if (unknown) throw new PostgrestError(400, 'PGRST204', `Could not find the '${unknown}' column of '${path}' in the schema cache`)

    if (request.method === 'PATCH') {
      if (!keys.length) throw unsupported('a PATCH with no columns')
      args.push(JSON.stringify(records[0] ?? {}))
      const where = whereOf(params, name, columns, args)
      const set = keys.map((k) => `${ident(k)} = _v.${ident(k)}`).join(', ')
      const statement = `update ${name} set ${set} from jsonb_populate_record(null::${name}, $1::jsonb) as _v ${where} returning ${name}.*`
      return { status: prefer.representation ? 200 : 204, body: await run(jsonRows(statement, list), args) }
    }
    if (request.method === 'POST') {
      args.push(JSON.stringify(records))
      const cols = keys.map(ident).join(', ')
      const target = (params.get('on_conflict') ?? '').split(',').filter(Boolean).map(ident).join(', ')
      if (prefer.mergeDuplicates && !target) throw unsupported('resolution=merge-duplicates without on_conflict')
      if (!records.length || !keys.length) throw unsupported('an insert of no rows or no columns')
      const conflict = prefer.ignoreDuplicates
        ? `on conflict ${target ? `(${target})` : ''} do nothing`
        : prefer.mergeDuplicates
          ? `on conflict (${target}) do update set ${keys.map((k) => `${ident(k)} = excluded.${ident(k)}`).join(', ')}`
          : ''
      const statement = `insert into ${name} (${cols}) select ${cols} from jsonb_populate_recordset(null::${name}, $1::jsonb) ${conflict} returning *`
      return { status: 201, body: await run(jsonRows(statement, list), args) }
    }
    throw new PostgrestError(405, 'PGRST117', `Unsupported HTTP method: ${request.method}`)
  }

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url)
    const path = url.pathname.replace(/^\/rest\/v1\//, '')
    const singular = (request.headers.get('accept') ?? '').includes('application/vnd.pgrst.object+json')
    const isRpc = path.startsWith('rpc/')
    try {
      const minimal = !preferOf(request.headers.get('prefer')).representation && !['GET', 'HEAD'].includes(request.method) && !isRpc
      if (isRpc && request.method !== 'POST') throw unsupported(`${request.method} on a function`)
      schema ??= loadSchema(db)
      const cache = await schema
      const body = isRpc ? await readJson(request) : undefined
      if (isRpc && (typeof body !== 'object' || body === null || Array.isArray(body))) throw new PostgrestError(400, 'PGRST102', 'Empty or invalid json')
      const respond = async (q: Queries) => {
        const run = async (sql: string, args: unknown[]) => (await q.query<{ body: string }>(sql, args)).rows[0]?.body ?? 'null'
        const result = isRpc ? await rpc(cache, path.slice(4), body as Record<string, unknown>, run) : await table(cache, request, path, url.searchParams, run)
        if (!singular) return result
        const rows = JSON.parse(result.body) as unknown
        // Thrown inside the transaction: PostgREST rolls a singular write back when the count is wrong.
        if (!Array.isArray(rows) || rows.length !== 1)
          throw new PostgrestError(
            406,
            'PGRST116',
            'Cannot coerce the result to a single JSON object',
            `The result contains ${Array.isArray(rows) ? rows.length : 0} rows`,
          )
        return { ...result, body: JSON.stringify(rows[0]) }
      }
      // One statement is atomic on its own; only a singular answer needs a transaction to roll back.
      const answer = singular ? await db.transaction(respond) : await respond(db)
      if (minimal) return new Response(null, { status: answer.status === 201 ? 201 : 204 })
      return new Response(answer.body, { status: answer.status, headers: { 'content-type': 'application/json; charset=utf-8', 'content-range': '*/*' } })
    } catch (error) {
      if (error instanceof PostgrestError)
        return Response.json({ code: error.code, details: error.details, hint: error.hint, message: error.message }, { status: error.status })
      const pg = error as { code?: string; message?: string; detail?: string; hint?: string }
      return Response.json(
        { code: pg.code ?? null, details: pg.detail ?? null, hint: pg.hint ?? null, message: pg.message ?? String(error) },
        { status: statusOf(pg.code) },
      )
    }
  }

  // PostgREST reads the schema once and again on NOTIFY pgrst, which Supabase sends after any DDL.
  return Object.assign(handle, { reload: () => void (schema = undefined) })
}
