package report

import (
	"slices"

	"github.com/academemes/harness/harness/internal/energy"
)

// cpuShareTable is one meter's attribution by CPU share: per target and
// phase, each group's part of the dynamic energy. A model on top of the
// meter, and labelled so.
type cpuShareTable struct {
	ID     string
	Meter  energy.MeterSummary
	Model  string
	Groups []string // column order: cpu.csv's group names
	Roles  []string // what each column is
	Rows   []cpuShareRow
}

type cpuShareRow struct {
	Target, Mode, Phase string
	Cells               []*energy.GroupShare // nil where the group ran nothing
	UnattributedJ       energy.Float
	Mark                mark
}

// cpuShareTables builds one table per meter whose phases carry a split;
// none for a run without cpu.csv.
func cpuShareTables(sum *energy.Summary, v validity) []cpuShareTable {
	var out []cpuShareTable
	for i, m := range sum.Meters {
		ct := cpuShareTable{ID: "cpu-share-table", Meter: m}
		if i > 0 {
			ct.ID += "-" + slug(m.Name)
		}
		type entry struct {
			t, mode, phase string
			sh             *energy.CPUShares
			mk             mark
		}
		var es []entry
		for _, t := range sum.Targets {
			for j := range t.Phases {
				if e := t.Phases[j].Meter(m.Name); e != nil && e.CPUShares != nil {
					es = append(es, entry{t.Name, t.Mode, t.Phases[j].Phase, e.CPUShares, v.Mark(t.Name, t.Phases[j].Phase, 0)})
					ct.Model = e.CPUShares.Model
					for _, g := range e.CPUShares.Groups {
						if !slices.Contains(ct.Groups, g.Group) {
							ct.Groups = append(ct.Groups, g.Group)
							ct.Roles = append(ct.Roles, g.Role)
						}
					}
				}
			}
		}
		if len(es) == 0 {
			continue
		}
		for _, e := range es {
			r := cpuShareRow{Target: e.t, Mode: e.mode, Phase: e.phase, UnattributedJ: e.sh.UnattributedJ, Mark: e.mk, Cells: make([]*energy.GroupShare, len(ct.Groups))}
			for k := range e.sh.Groups {
				r.Cells[slices.Index(ct.Groups, e.sh.Groups[k].Group)] = &e.sh.Groups[k]
			}
			ct.Rows = append(ct.Rows, r)
		}
		out = append(out, ct)
	}
	return out
}
