package reserved

import (
	"errors"
	"fmt"

	"github.com/clusterkeep/clusterkeep/internal/hive"
)

// ScheduleKey holds the schedule ("Config"), its state ("State") and when
// a run was last asked for ("RunNow").
const ScheduleKey = Root + "/Schedule"

// Schedule reads the schedule's configuration, state, and when a run was
// last asked for ("" for what is not set).
func Schedule(r Reader) (config, state, runNow string, err error) {
	k, err := r.Get(ScheduleKey)
	if errors.Is(err, hive.ErrKeyNotFound) {
		return "", "", "", nil
	}
	if err != nil {
		return "", "", "", fmt.Errorf("read the schedule: %w", err)
	}
	for _, v := range k.Values {
		switch v.Name {
		case "Config":
			config = v.String
		case "State":
			state = v.String
		case "RunNow":
			runNow = v.String
		}
	}
	return config, state, runNow, nil
}

// AskRunTxn records that a run is asked for at t (RFC 3339), if a schedule
// is set.
func AskRunTxn(t string) hive.Txn {
	return hive.Txn{
		Conds: []hive.Cond{{Kind: hive.CondValueExists, Key: ScheduleKey, Name: "Config"}},
		Ops:   []hive.Op{hive.SetValue(ScheduleKey, hive.StringValue("RunNow", t))},
	}
}

// SetScheduleTxn records a schedule's configuration, or removes the
// schedule and its state when config is "".
func SetScheduleTxn(config string) hive.Txn {
	op := hive.SetValue(ScheduleKey, hive.StringValue("Config", config))
	if config == "" {
		op = hive.DeleteKey(ScheduleKey)
	}
	return hive.Txn{Ops: []hive.Op{op}}
}

// SwapScheduleStateTxn replaces the schedule's state old ("" when none) by
// next, only if it is still old and the configuration is still config.
func SwapScheduleStateTxn(config, old, next string) hive.Txn {
	cfg := hive.StringValue("Config", config)
	cond := hive.Cond{Kind: hive.CondValueMissing, Key: ScheduleKey, Name: "State"}
	if old != "" {
		v := hive.StringValue("State", old)
		cond = hive.Cond{Kind: hive.CondValueEquals, Key: ScheduleKey, Value: &v}
	}
	return hive.Txn{
		Conds: []hive.Cond{{Kind: hive.CondValueEquals, Key: ScheduleKey, Value: &cfg}, cond},
		Ops:   []hive.Op{hive.SetValue(ScheduleKey, hive.StringValue("State", next))},
	}
}
