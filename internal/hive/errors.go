package hive

import "errors"

// Sentinel errors callers branch on. Errors returned by the hive wrap them
// with what was being done.
var (
	ErrInvalidPath        = errors.New("invalid key path")
	ErrInvalidName        = errors.New("invalid name")
	ErrInvalidType        = errors.New("invalid value type")
	ErrInvalidValue       = errors.New("invalid value")
	ErrValueTooLarge      = errors.New("value too large")
	ErrInvalidTxn         = errors.New("invalid transaction")
	ErrReserved           = errors.New("reserved key")
	ErrKeyNotFound        = errors.New("key not found")
	ErrValueNotFound      = errors.New("value not found")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrCompacted          = errors.New("watch history compacted: re-read the key")
	ErrCorrupt            = errors.New("hive database corrupt")
	ErrInUse              = errors.New("hive database in use by a running node service")
	ErrBadExport          = errors.New("malformed export")
	ErrClosed             = errors.New("hive closed")
)
