// Shared by the PostgreSQL tests: the product's database as it stands before the migrations (the
// file the sandbox starts from too), with two users, and the migrations as one script.
import { MIGRATIONS_SQL, PRODUCT_SQL } from '../../sandbox/schema.ts'

export const ALICE = '11111111-1111-4111-8111-111111111111'
export const BOB = '22222222-2222-4222-8222-222222222222'

export const SEED = `${PRODUCT_SQL}
insert into public.user_accounts (id, email) values ('${ALICE}', 'alice@example.com'), ('${BOB}', 'bob@example.com');
`

/** Every migration, in order, as one script. */
export const MIGRATION = MIGRATIONS_SQL.join('\n')
