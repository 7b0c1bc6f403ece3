-- Talo store, version 1 (SQLite). Times are Unix milliseconds.
CREATE TABLE games (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL,
	api_secret TEXT NOT NULL,
	verify_requests BOOLEAN NOT NULL DEFAULT FALSE,
	display_name_prop_key TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE TABLE game_props (
	game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (game_id, key)
);
CREATE TABLE verification_keys (
	game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
	version INTEGER NOT NULL,
	secret TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (game_id, version)
);
CREATE TABLE access_keys (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
	scopes TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT
);
CREATE TABLE players (
	id TEXT PRIMARY KEY,
	game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
	dev_build BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL
);
CREATE TABLE player_props (
	player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (player_id, key)
);
CREATE TABLE player_aliases (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
	player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
	service TEXT NOT NULL,
	identifier TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL,
	UNIQUE (game_id, service, identifier)
);
CREATE INDEX player_aliases_player ON player_aliases (player_id);
CREATE TABLE player_groups (
	id TEXT PRIMARY KEY,
	game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
	name TEXT NOT NULL
);
CREATE TABLE player_group_members (
	group_id TEXT NOT NULL REFERENCES player_groups(id) ON DELETE CASCADE,
	player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, player_id)
);
CREATE TABLE game_channels (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	game_id BIGINT NOT NULL REFERENCES games(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	owner_alias_id BIGINT REFERENCES player_aliases(id) ON DELETE SET NULL,
	total_messages BIGINT NOT NULL DEFAULT 0,
	auto_cleanup BOOLEAN NOT NULL DEFAULT FALSE,
	private BOOLEAN NOT NULL DEFAULT FALSE,
	temporary_membership BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX game_channels_game ON game_channels (game_id);
CREATE TABLE game_channel_members (
	channel_id BIGINT NOT NULL REFERENCES game_channels(id) ON DELETE CASCADE,
	alias_id BIGINT NOT NULL REFERENCES player_aliases(id) ON DELETE CASCADE,
	joined_at BIGINT NOT NULL,
	PRIMARY KEY (channel_id, alias_id)
);
CREATE INDEX game_channel_members_alias ON game_channel_members (alias_id);
CREATE TABLE game_channel_props (
	channel_id BIGINT NOT NULL REFERENCES game_channels(id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (channel_id, key)
);
CREATE TABLE game_channel_storage_props (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	channel_id BIGINT NOT NULL REFERENCES game_channels(id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	created_by_alias_id BIGINT REFERENCES player_aliases(id) ON DELETE SET NULL,
	last_updated_by_alias_id BIGINT REFERENCES player_aliases(id) ON DELETE SET NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX game_channel_storage_props_key ON game_channel_storage_props (channel_id, key);
CREATE TABLE player_presence (
	player_id TEXT PRIMARY KEY REFERENCES players(id) ON DELETE CASCADE,
	alias_id BIGINT REFERENCES player_aliases(id) ON DELETE SET NULL,
	online BOOLEAN NOT NULL DEFAULT FALSE,
	custom_status TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);
CREATE TABLE player_alias_subscriptions (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	subscriber_id BIGINT NOT NULL REFERENCES player_aliases(id) ON DELETE CASCADE,
	subscribed_to_id BIGINT NOT NULL REFERENCES player_aliases(id) ON DELETE CASCADE,
	confirmed BOOLEAN NOT NULL DEFAULT FALSE,
	relationship_type TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	UNIQUE (subscriber_id, subscribed_to_id)
);
CREATE INDEX player_alias_subscriptions_to ON player_alias_subscriptions (subscribed_to_id);
