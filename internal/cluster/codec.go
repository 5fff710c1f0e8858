package cluster

// The form of a command in the consensus log. JSON stays at the API's edge:
// the node that takes a request parses it once, and every node applies the
// binary form below. Entries written by earlier versions are JSON objects;
// a log holds both during a rolling upgrade, told apart by the first byte.
//
//	byte    version (commandV1)
//	byte    flags: flagSystem, flagNoop
//	...     the transaction's binary form (hive.Txn.AppendBinary), unless a no-op

import (
	"encoding/json"
	"errors"
	"fmt"
)

// errBadCommand: a log entry's command does not decode.
var errBadCommand = errors.New("malformed command")

const (
	// commandV1 is the first binary form. JSON, the form before it, starts
	// with '{'; a later form takes another byte that is not '{'.
	commandV1 = 1

	flagSystem = 1 << 0
	flagNoop   = 1 << 1
)

// encodeCommand writes c in the current binary form.
func encodeCommand(c command) ([]byte, error) {
	var flags byte
	if c.System {
		flags |= flagSystem
	}
	if c.Noop {
		flags |= flagNoop
		return []byte{commandV1, flags}, nil
	}
	b := make([]byte, 2, 2+c.Txn.BinarySize())
	b[0], b[1] = commandV1, flags
	b, err := c.Txn.AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	return b, nil
}

// decodeCommand reads a command in any form this version knows: the binary
// form, or the JSON of earlier versions.
func decodeCommand(b []byte) (command, error) {
	if len(b) == 0 {
		return command{}, fmt.Errorf("%w: empty", errBadCommand)
	}
	switch b[0] {
	case '{':
		var c command
		if err := json.Unmarshal(b, &c); err != nil {
			return command{}, fmt.Errorf("%w: JSON form: %w", errBadCommand, err)
		}
		return c, nil
	case commandV1:
	default:
		return command{}, fmt.Errorf("%w: unknown form %d (written by a newer version?)", errBadCommand, b[0])
	}
	if len(b) < 2 {
		return command{}, fmt.Errorf("%w: truncated", errBadCommand)
	}
	flags := b[1]
	if flags&^(flagSystem|flagNoop) != 0 {
		return command{}, fmt.Errorf("%w: unknown flags %#x", errBadCommand, flags)
	}
	c := command{System: flags&flagSystem != 0, Noop: flags&flagNoop != 0}
	if c.Noop {
		if len(b) != 2 {
			return command{}, fmt.Errorf("%w: a no-op with %d bytes of payload", errBadCommand, len(b)-2)
		}
		return c, nil
	}
	if err := c.Txn.UnmarshalBinary(b[2:]); err != nil {
		return command{}, fmt.Errorf("%w: %w", errBadCommand, err)
	}
	return c, nil
}
