package ca

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaks a goroutine (the scheduler
// must stop with Stop).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
