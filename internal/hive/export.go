package hive

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// exportHeader opens every export; the number is the text format's version.
const exportHeader = "clusterkeep-hive-export 1"

// Export writes the subtree at path in the text form, one line per key and
// per value, parents first:
//
//	clusterkeep-hive-export 1
//	key "Resources/Web"
//	value "Port" uint32 8080
//	value "Hosts" multi-string ["a","b"]
//	value "Blob" binary 00ff
//
// Strings are Go-quoted, multi-strings a JSON array, binary hex. Import of
// the text puts back exactly the same keys, names and values.
func (r *Reader) Export(w io.Writer, path string) error {
	return r.ExportSkipping(w, path, nil)
}

// ExportSkipping is Export leaving out the keys (not their subkeys) for
// which skip, when not nil, is true.
func (r *Reader) ExportSkipping(w io.Writer, path string, skip func(path string) bool) error {
	p, err := ParsePath(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, exportHeader)
	err = r.Walk(p, func(k Key) error {
		if skip != nil && skip(k.Path) {
			return nil
		}
		fmt.Fprintf(bw, "key %s\n", strconv.Quote(k.Path))
		for _, v := range k.Values {
			fmt.Fprintf(bw, "value %s %s %s\n", strconv.Quote(v.Name), v.Type, FormatData(v))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export %q: %w", path, err)
	}
	return bw.Flush()
}

// Export writes the subtree at path (see Reader.Export) from one consistent view.
func (h *Hive) Export(w io.Writer, path string) error {
	return h.View(func(r *Reader) error { return r.Export(w, path) })
}

// FormatData writes a value's data in the text form Export uses.
func FormatData(v Value) string {
	switch v.Type {
	case TypeString:
		return strconv.Quote(v.String)
	case TypeMultiString:
		b, _ := json.Marshal(v.Data())
		return string(b)
	case TypeUint32:
		return strconv.FormatUint(uint64(v.Uint32), 10)
	case TypeUint64:
		return strconv.FormatUint(v.Uint64, 10)
	default:
		return hex.EncodeToString(v.Binary)
	}
}

// ParseData parses a value's data from its text form, as written by Export
// and typed by an operator: strings Go-quoted or bare, multi-strings a JSON
// array, numbers decimal (or 0x hex), binary hex. Its errors say in words
// what the text should have been, never in the parser's own terms.
func ParseData(name string, t Type, s string) (Value, error) {
	v := Value{Name: name, Type: t}
	var why string
	switch t {
	case TypeString:
		if strings.HasPrefix(s, `"`) {
			var err error
			if v.String, err = strconv.Unquote(s); err != nil {
				why = `it starts with a quote but is not a well-formed quoted string (close the quote, escape inner quotes as \")`
			}
		} else {
			v.String = s
		}
	case TypeMultiString:
		if json.Unmarshal([]byte(s), &v.Strings) != nil || v.Strings == nil {
			why = `want a JSON array of strings, such as ["a","b"]`
		}
	case TypeUint32:
		var n uint64
		n, why = parseUint(s, 32)
		v.Uint32 = uint32(n)
	case TypeUint64:
		v.Uint64, why = parseUint(s, 64)
	case TypeBinary:
		var err error
		if v.Binary, err = hex.DecodeString(s); err != nil {
			why = "want hexadecimal bytes, two digits each, such as 0a1bff"
		}
	default:
		return Value{}, fmt.Errorf("value %q: %w: %q", name, ErrInvalidType, t)
	}
	if why != "" {
		return Value{}, fmt.Errorf("value %q: %w: %q is not a %s: %s", name, ErrInvalidValue, s, t, why)
	}
	return v, v.Validate()
}

// parseUint parses an unsigned number of bits bits, decimal or 0x hex; on
// failure it says why in words.
func parseUint(s string, bits int) (uint64, string) {
	n, err := strconv.ParseUint(s, 0, bits)
	if err == nil {
		return n, ""
	}
	max := uint64(1)<<bits - 1
	if bits == 64 {
		max = ^uint64(0)
	}
	switch {
	case strings.HasPrefix(strings.TrimSpace(s), "-"):
		return 0, fmt.Sprintf("negative; want a whole number from 0 to %d", max)
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Sprintf("too large; want at most %d", max)
	}
	return 0, fmt.Sprintf("want a whole number from 0 to %d, decimal or hex with 0x (such as 8080 or 0x1f90)", max)
}

// ParseExport reads an export and returns the operations that recreate it:
// a create-key for every key and a set-value for every value, in order. It
// reads everything before returning, so a malformed text yields an error
// naming the line and no operations.
func ParseExport(r io.Reader) ([]Op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*MaxValueSize)
	line := 0
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: line %d: %s", ErrBadExport, line, fmt.Sprintf(format, a...))
	}
	var ops []Op
	curKey := ""
	haveKey := false
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			if text != exportHeader {
				return nil, bad("expected header %q", exportHeader)
			}
			continue
		}
		if text == "" {
			continue
		}
		word, rest, _ := strings.Cut(text, " ")
		switch word {
		case "key":
			k, tail, err := unquotePrefix(rest)
			if err != nil || tail != "" {
				return nil, bad("key path must be one quoted string")
			}
			if _, err := ParsePath(k); err != nil {
				return nil, bad("%v", err)
			}
			curKey, haveKey = k, true
			ops = append(ops, CreateKey(k))
		case "value":
			if !haveKey {
				return nil, bad("value before any key")
			}
			name, tail, err := unquotePrefix(rest)
			if err != nil {
				return nil, bad("value name must be a quoted string")
			}
			typ, data, ok := strings.Cut(strings.TrimPrefix(tail, " "), " ")
			if !ok {
				return nil, bad("value %q: want TYPE DATA after the name", name)
			}
			t, err := ParseType(typ)
			if err != nil {
				return nil, bad("%v", err)
			}
			if t == TypeString && !strings.HasPrefix(data, `"`) {
				return nil, bad("value %q: string data must be quoted", name)
			}
			v, err := ParseData(name, t, data)
			if err != nil {
				return nil, bad("%v", err)
			}
			ops = append(ops, SetValue(curKey, v))
		default:
			return nil, bad("unknown line kind %q (want key or value)", word)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrBadExport, line+1, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrBadExport)
	}
	return ops, nil
}

func unquotePrefix(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	u, err := strconv.Unquote(q)
	return u, s[len(q):], err
}
