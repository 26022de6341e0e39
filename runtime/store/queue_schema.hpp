// NAME
//   queue_schema -- the queue database's schema, as numbered migrations.
//
// DESCRIPTION
//   The schema version of a file is its PRAGMA user_version; migration i
//   takes a file from version i to i + 1. A released migration is never
//   edited: a change to the schema is a new migration at the end.
#pragma once

namespace postconn {

/// The schema version this build writes: the number of migrations.
int queue_schema_version();

/// The SQL that takes a file from `version` to `version + 1`, for
/// 0 <= version < queue_schema_version().
const char* queue_migration(int version);

} // namespace postconn
