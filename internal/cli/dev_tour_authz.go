package cli

import (
	"fmt"
	"io"
	"path/filepath"
)

// authzStep is one delegated decision of the tour: the request and the
// answer ("allow" or "deny") the authorization service must give. The HTTP
// status is 200 either way: a deny is an answer, not an error.
type authzStep struct {
	allow bool
	desc  string
	cmd   string
}

func (s authzStep) print(w io.Writer) {
	mark := "deny "
	if s.allow {
		mark = "allow"
	}
	fmt.Fprintf(w, "    ⇒ %s %s\n      %s\n", mark, s.desc, s.cmd)
}

// authzAsk is the command of one decision: POST /authorize with AUTHZ,
// the orders service's own token.
func authzAsk(az, body string) string {
	return `api "$AUTHZ" -H 'Content-Type: application/json' -d '` + body + `' ` + az + `/authorize`
}

// authzSetupSteps replicate a new order of bob's, as orders would.
func authzSetupSteps(az string) []tourStep {
	return []tourStep{{true, "replicate: bob owns o-2002, of alice's team", 200,
		`api "$AUTHZ" -H 'Content-Type: application/json' -d '{"writes":[{"op":"touch","tuple":"order:o-2002#owner@user:usr_bob"},` +
			`{"op":"touch","tuple":"order:o-2002#team@team:team_usr_alice"}]}' ` + az + `/relationships`}}
}

// authzDecisionSteps are asked after authzSetupSteps.
func authzDecisionSteps(az string) []authzStep {
	return []authzStep{
		{true, "alice reads o-2002: relation view = owner + team->manager", authzAsk(az,
			`{"principal":{"id":"usr_alice"},"action":"read","resource":{"type":"order","id":"o-2002"}}`)},
		{false, "alice deletes o-2002: only the owner (or an admin)", authzAsk(az,
			`{"principal":{"id":"usr_alice"},"action":"delete","resource":{"type":"order","id":"o-2002"}}`)},
		{true, "carol (admin) deletes it: policy admins-delete", authzAsk(az,
			`{"principal":{"id":"usr_carol","roles":["admin"]},"action":"delete","resource":{"type":"order","id":"o-2002"}}`)},
		{false, "...but not once it has shipped: a forbid wins", authzAsk(az,
			`{"principal":{"id":"usr_carol","roles":["admin"]},"action":"delete","resource":{"type":"order","id":"o-2002","attrs":{"status":"shipped"}}}`)},
		{false, "an acme admin and a globex order: the tenant guard", authzAsk(az,
			`{"principal":{"id":"usr_carol","roles":["admin"],"tenant":"acme"},"action":"read","resource":{"type":"order","id":"o-2002","tenant":"globex"}}`)},
		{false, "an action no policy knows: fail closed", authzAsk(az,
			`{"principal":{"id":"usr_bob"},"action":"ship","resource":{"type":"order","id":"o-2002"}}`)},
	}
}

// authzAuditSteps read the decision log back.
func authzAuditSteps(az string) []tourStep {
	return []tourStep{{true, "the last decisions, with reasons and shadow results", 200, `api "$AUTHZ" '` + az + `/decisions?limit=8'`}}
}

// printAuthzTour prints the authorization service's section.
func printAuthzTour(w io.Writer, f devFlags, st devState) {
	az := loopbackURL(f.authzListen)
	fmt.Fprintf(w, `
 10. Fine-grained decisions are delegated. orders asks the authorization
    service %[1]s for every read, delete and pay (sdk/authz), with the
    caller's token as principal, and relays its reason in a 403: step 7 above
    already went through it. Policies are Cedar, in %[2]s
    (edit them: they reload); relationships follow %[3]s,
    replicated by orders. Its own token (what orders uses):
    AUTHZ=$(curl -s -u %[4]s:%[5]s -d grant_type=client_credentials \
      -d 'scope=authz:check authz:write authz:audit' -d resource=%[6]s \
      %[7]s/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

`, az, filepath.Join(f.dataDir, "authz", "policies"), filepath.Join(f.dataDir, "authz", "relations.zed"),
		devOrdersClient, st.DemoOrdersSecret, devAuthzAudience, f.issuer)
	printSteps(w, authzSetupSteps(az))
	fmt.Fprintf(w, "\n    Ask (each answer: allow, reason, the policies and relations that decided):\n\n")
	for _, s := range authzDecisionSteps(az) {
		s.print(w)
	}
	fmt.Fprintf(w, `
    Shadow policies: the candidate set in %[1]s (managers
    no longer read their team's orders) runs beside the active one. It
    disagrees with alice's read of o-2002 above, and with step 7's "alice
    sees bob's orders": logged and counted, never enforced.

`, filepath.Join(f.dataDir, "authz", "candidate"))
	printSteps(w, authzAuditSteps(az))
	fmt.Fprintf(w, `      go run ./cmd/gatehouse authz decisions --file %[1]s --disagreements
      curl -s http://%[2]s/metrics | grep gatehouse_authz_shadow
    The active set's YAML tests, run against the candidate, fail on the same
    case (what a policy repository's CI would say before promoting it):
      go run ./cmd/gatehouse policy test %[3]s %[4]s
`, filepath.Join(f.dataDir, "decisions.jsonl"), f.adminListen, filepath.Join(f.dataDir, "authz", "candidate"),
		filepath.Join(f.dataDir, "authz", "policies", "orders_test.yaml"))
}
