package authz

// Principal is who asks. When Token is set the principal is sent as
// {"token": ...} (the service verifies it and reads the claims itself) and
// the other fields are ignored; otherwise the claims are sent as given and
// ID is required (Type defaults to "user" at the service).
type Principal struct {
	Type   string
	ID     string
	Roles  []string
	Tenant string
	Attrs  map[string]any
	Token  string
}

// Resource is what the action is on. Type and ID are required.
type Resource struct {
	Type   string
	ID     string
	Tenant string
	Attrs  map[string]any
}

// Request is one authorization question.
type Request struct {
	Principal Principal
	Action    string
	Resource  Resource
	Context   map[string]any
	// AtLeastAsFresh is a revision token (from WriteRelationships or
	// PutEntity): the decision is evaluated at that revision or a newer
	// one. Such a request bypasses the cache.
	AtLeastAsFresh string
}

// Check is one question of a batch; the principal is the batch's.
type Check struct {
	Action   string
	Resource Resource
	Context  map[string]any
}

// RelationCheck is one relationship check behind a decision and the tuple
// path that proved it.
type RelationCheck struct {
	Check   string
	Allowed bool
	Path    []string
}

// Decision is the service's answer, or a fail-closed deny.
type Decision struct {
	Allow bool
	// Reason is one line for humans; UnavailableReason when Err is set.
	Reason        string
	DecisionID    string
	PolicyVersion string
	Revision      string
	// Policies are the ids of the determining policies.
	Policies  []string
	Relations []RelationCheck
	// Errors are the policy evaluation errors the service reported (a
	// policy that errors is skipped); informational.
	Errors []string
	// Cached is true when the decision came from the client's cache.
	Cached bool
	// Err is set when the decision is a deny caused by an error (the
	// service could not be asked or its answer was not acceptable). It
	// wraps ErrUnavailable, ErrBadAnswer or ErrInvalidRequest. Allow is
	// always false when Err is set.
	Err error
}

// RelationshipWrite is one write of WriteRelationships: Op is "touch"
// (create if absent) or "delete", Tuple is e.g.
// "order:o-1#owner@user:usr_alice".
type RelationshipWrite struct {
	Op    string
	Tuple string
}
