package main

import (
	"fmt"
	"sort"
	"strings"
)

// figure is one row of the table: a value per round, and the target where
// there is one.
type figure struct {
	name   string
	format string // how each number prints, e.g. "%.3f"
	vals   []float64
	target string                 // "<= 1.25", ">= 4", "= 0", or ""
	met    func(med float64) bool // nil when there is no target
}

func (f *figure) add(v float64) { f.vals = append(f.vals, v) }

func (f *figure) stats() (med, lo, hi float64) {
	s := append([]float64(nil), f.vals...)
	sort.Float64s(s)
	// The median of an even count is the mean of the middle two.
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// table is the figures of one hive size, in the order they were added.
type table struct {
	title string
	figs  []*figure
	notes []string
}

func (t *table) fig(name, format string) *figure {
	for _, f := range t.figs {
		if f.name == name {
			return f
		}
	}
	f := &figure{name: name, format: format}
	t.figs = append(t.figs, f)
	return f
}

func (t *table) targeted(name, format string, target string, met func(float64) bool) *figure {
	f := t.fig(name, format)
	f.target, f.met = target, met
	return f
}

func (t *table) note(format string, a ...any) { t.notes = append(t.notes, fmt.Sprintf(format, a...)) }

// print writes the table in Markdown.
func (t *table) print() {
	fmt.Printf("\n### %s\n\n", t.title)
	for _, n := range t.notes {
		fmt.Println(n)
	}
	if len(t.notes) > 0 {
		fmt.Println()
	}
	fmt.Println("| figure | median | min | max | target | met |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, f := range t.figs {
		if len(f.vals) == 0 {
			continue
		}
		med, lo, hi := f.stats()
		met := ""
		if f.met != nil {
			met = "no"
			if f.met(med) {
				met = "yes"
			}
		}
		p := func(v float64) string { return fmt.Sprintf(f.format, v) }
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", f.name, p(med), p(lo), p(hi), strings.ReplaceAll(f.target, "|", "/"), met)
	}
}
