-- What the program adds to FreeRADIUS's standard PostgreSQL schema (radcheck, radreply, radacct...).
-- Loaded once after schema.sql (the lab does it; at a real HQ: psql -f program.sql radius).

-- The libraries: radacct.realm is the library id (HQ's client shortname, see docs/fleet.md).
CREATE TABLE IF NOT EXISTS library (
	id       text PRIMARY KEY,
	name     text NOT NULL DEFAULT '',
	district text NOT NULL DEFAULT '',
	province text NOT NULL DEFAULT ''
);

-- Reach reports read radacct by start time and library.
CREATE INDEX IF NOT EXISTS radacct_realm_start_idx ON radacct (realm, acctstarttime);

-- Anonymous survey counts per library, day, question and answer: each library sends the day's
-- count (a snapshot, so a record sent twice changes nothing). No session, device or time of day.
CREATE TABLE IF NOT EXISTS survey_count (
	library  text NOT NULL,
	day      date NOT NULL,
	question text NOT NULL,
	answer   text NOT NULL,
	n        integer NOT NULL,
	PRIMARY KEY (library, day, question, answer)
);
