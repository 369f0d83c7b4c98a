package validity

import (
	"os"
	"strings"
	"testing"
)

// The README's thresholds table is the one Default renders, so that the
// documentation cannot drift from the values the checks use.
func TestREADMEThresholds(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if table := Default().Markdown(); !strings.Contains(string(readme), table) {
		t.Errorf("README.md does not hold the thresholds table as Default renders it; put this in its Validity section:\n%s", table)
	}
}
