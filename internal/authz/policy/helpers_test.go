package policy

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
)

// testSchema is a schema exercising RBAC, ABAC, ReBAC facts, step-up,
// entity parents and action groups.
const testSchema = `
entity team;
entity folder;
entity user in [team] {
  roles: Set<String>,
  tenant?: String,
  acr?: String,
  auth_time?: Long,
  level?: Long,
};
entity document in [folder] {
  status: String,
  tenant?: String,
  amount?: Long,
  owner?: user,
  meta?: { tags: Set<String> },
};
action "admin-ops";
action view, edit appliesTo {
  principal: user,
  resource: document,
  context: { relations: { owner: Bool, editor: Bool } },
};
action approve appliesTo {
  principal: user,
  resource: document,
  context: { now: Long, ip?: ipaddr },
};
action purge in ["admin-ops"] appliesTo { principal: user, resource: [document, folder] };
`

const testPolicies = `
@id("admins-view")
permit (principal, action == Action::"view", resource is document)
when { principal.roles.contains("admin") };

@id("owner-views")
permit (principal, action == Action::"view", resource)
when { context.relations.owner };

@id("editors-edit-drafts")
permit (principal, action == Action::"edit", resource is document)
when { context.relations.editor && resource.status == "draft" };

@id("tenant-readers")
permit (principal, action in [Action::"view"], resource is document)
when { principal has tenant && resource has tenant && principal.tenant == resource.tenant && principal.roles.contains("reader") };

@id("approve-small-with-step-up")
permit (principal, action == Action::"approve", resource is document)
when {
  resource has amount && resource.amount <= 100000 &&
  principal has acr && principal.acr == "mfa" &&
  principal has auth_time && context.now - principal.auth_time <= 300
};

@id("no-archived")
forbid (principal, action, resource is document)
when { resource.status == "archived" };

@id("team-purges")
permit (principal in team::"ops", action in Action::"admin-ops", resource);

@id("overflowing")
permit (principal, action == Action::"view", resource is document)
when { principal has level && principal.level + 9223372036854775800 > 0 };
`

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return m
}

func mustLoad(t testing.TB, files map[string]string) *Set {
	t.Helper()
	s, err := LoadFS(mapFS(files))
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	return s
}

func testSet(t testing.TB) *Set {
	return mustLoad(t, map[string]string{"schema.cedarschema": testSchema, "main.cedar": testPolicies})
}

// jsonValue decodes a JSON literal the way the service does.
func jsonValue(t testing.TB, src string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(src))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", src, err)
	}
	return v
}

func user(id string, roles ...string) Entity {
	rs := make([]any, len(roles))
	for i, r := range roles {
		rs[i] = r
	}
	return Entity{Type: "user", ID: id, Attrs: map[string]any{"roles": rs}}
}

func (e Entity) with(k string, v any) Entity {
	attrs := map[string]any{}
	for a, x := range e.Attrs {
		attrs[a] = x
	}
	attrs[k] = v
	e.Attrs = attrs
	return e
}

func doc(id, status string) Entity {
	return Entity{Type: "document", ID: id, Attrs: map[string]any{"status": status}}
}
