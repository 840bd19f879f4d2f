package policy

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// genSpec describes a generated policy set: nActions actions (in nActions/10
// groups) over nTypes resource types, nPolicies policies with realistic
// conditions (roles contains, tenant ==, status, relations) and a few
// policies whose scope is open.
type genSpec struct {
	nActions, nTypes, nPolicies int
	open                        int // policies with an open action or resource scope
	seed                        uint64
}

func (g genSpec) files() map[string]string {
	var sch strings.Builder
	sch.WriteString("entity team;\nentity folder;\n")
	sch.WriteString("entity user in [team] { roles: Set<String>, tenant?: String, level?: Long };\n")
	for t := range g.nTypes {
		fmt.Fprintf(&sch, "entity r%d in [folder] { status: String, tenant?: String, amount?: Long };\n", t)
	}
	groups := max(g.nActions/10, 1)
	for gi := range groups {
		fmt.Fprintf(&sch, "action \"g%d\";\n", gi)
	}
	var res []string
	for t := range g.nTypes {
		res = append(res, fmt.Sprintf("r%d", t))
	}
	for a := range g.nActions {
		fmt.Fprintf(&sch, "action \"a%d\" in [\"g%d\"] appliesTo { principal: user, resource: [%s], context: { relations: { owner: Bool, viewer: Bool } } };\n",
			a, a%groups, strings.Join(res, ", "))
	}
	r := rand.New(rand.NewPCG(g.seed, 42))
	var pol strings.Builder
	act := func() int { return r.IntN(g.nActions) }
	typ := func() int { return r.IntN(g.nTypes) }
	for i := range g.nPolicies {
		fmt.Fprintf(&pol, "@id(\"p%d\")\n", i)
		if i < g.open {
			switch i % 4 {
			case 0:
				pol.WriteString(`forbid (principal, action, resource) when { principal.roles.contains("banned") };`)
			case 1:
				fmt.Fprintf(&pol, `permit (principal, action == Action::"a%d", resource) when { context.relations.viewer };`, act())
			case 2:
				fmt.Fprintf(&pol, `permit (principal in team::"t%d", action, resource in folder::"f%d");`, r.IntN(3), r.IntN(3))
			case 3:
				fmt.Fprintf(&pol, `permit (principal, action in Action::"g%d", resource) when { principal has level && principal.level + 9223372036854775000 > 0 };`, r.IntN(groups))
			}
			pol.WriteString("\n")
			continue
		}
		// Most policies name one action and one resource type; a few cover
		// an action group or two actions.
		k := r.IntN(20)
		switch {
		case k < 2:
			k = 1
		case k < 3:
			k = 3
		default:
			k = []int{0, 2, 4, 5}[k%4]
		}
		switch k {
		case 0:
			fmt.Fprintf(&pol, `permit (principal, action == Action::"a%d", resource is r%d) when { principal.roles.contains("role%d") };`, act(), typ(), r.IntN(5))
		case 1:
			fmt.Fprintf(&pol, `permit (principal, action in [Action::"a%d", Action::"a%d"], resource is r%d) when { principal has tenant && resource has tenant && principal.tenant == resource.tenant && resource.status == "open" };`, act(), act(), typ())
		case 2:
			fmt.Fprintf(&pol, `permit (principal, action == Action::"a%d", resource is r%d) when { context.relations.owner && resource.status != "closed" };`, act(), typ())
		case 3:
			fmt.Fprintf(&pol, `forbid (principal, action in Action::"g%d", resource is r%d) when { resource.status == "archived" };`, r.IntN(groups), typ())
		case 4:
			fmt.Fprintf(&pol, `permit (principal, action == Action::"a%d", resource == r%d::"x%d") when { principal.roles.contains("role%d") };`, act(), typ(), r.IntN(3), r.IntN(5))
		case 5:
			fmt.Fprintf(&pol, `permit (principal, action == Action::"a%d", resource is r%d in folder::"f%d") when { resource has amount && resource.amount < 1000 };`, act(), typ(), r.IntN(3))
		}
		pol.WriteString("\n")
	}
	return map[string]string{"schema.cedarschema": sch.String(), "gen.cedar": pol.String()}
}

// randomRequest draws a request that mostly conforms to a genSpec schema.
func (g genSpec) randomRequest(r *rand.Rand) Request {
	roles := []any{}
	for k := range 5 {
		if r.IntN(4) == 0 {
			roles = append(roles, fmt.Sprintf("role%d", k))
		}
	}
	if r.IntN(20) == 0 {
		roles = append(roles, "banned")
	}
	p := Entity{Type: "user", ID: fmt.Sprintf("u%d", r.IntN(3)), Attrs: map[string]any{"roles": roles}}
	if r.IntN(2) == 0 {
		p.Attrs["tenant"] = []string{"acme", "globex"}[r.IntN(2)]
	}
	if r.IntN(4) == 0 {
		p.Attrs["level"] = int64(r.IntN(2000))
	}
	if r.IntN(2) == 0 {
		p.Parents = []EntityRef{{"team", fmt.Sprintf("t%d", r.IntN(3))}}
	}
	res := Entity{Type: fmt.Sprintf("r%d", r.IntN(g.nTypes)), ID: fmt.Sprintf("x%d", r.IntN(4)),
		Attrs: map[string]any{"status": []string{"open", "closed", "archived"}[r.IntN(3)]}}
	if r.IntN(2) == 0 {
		res.Attrs["tenant"] = []string{"acme", "globex"}[r.IntN(2)]
	}
	if r.IntN(2) == 0 {
		res.Attrs["amount"] = int64(r.IntN(2000))
	}
	if r.IntN(2) == 0 {
		res.Parents = []EntityRef{{"folder", fmt.Sprintf("f%d", r.IntN(3))}}
	}
	return Request{
		Principal: p,
		Action:    fmt.Sprintf("a%d", r.IntN(g.nActions)),
		Resource:  res,
		Relations: map[string]bool{"owner": r.IntN(3) == 0, "viewer": r.IntN(5) == 0},
	}
}
