// The system's SQLite 3 (Debian: libsqlite3-dev; macOS: the SDK's), used by the memory store.
#include <sqlite3.h>
