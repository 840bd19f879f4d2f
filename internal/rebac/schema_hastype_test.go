package rebac

import (
	"slices"
	"testing"
)

func TestSchemaHasType(t *testing.T) {
	s := mustSchema(t, docSchema)
	for _, tt := range []struct {
		typ  string
		want bool
	}{{"order", true}, {"team", true}, {"user", true}, {"nope", false}, {"", false}, {"Order", false}} {
		if got := s.HasType(tt.typ); got != tt.want || got != slices.Contains(s.Types(), tt.typ) {
			t.Errorf("HasType(%q) = %v, want %v", tt.typ, got, tt.want)
		}
	}
	if (*Schema)(nil).HasType("order") {
		t.Error("nil schema has a type")
	}
}
