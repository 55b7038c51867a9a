//! Recipient resolution, checked against a plain in-memory set computation on random users,
//! groups, memberships and notify inputs, on each backend.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tidings_domain::{ExternalId, Role};
use tidings_persistence::{Db, GroupOperator, NewUser, Recipients};
use tidings_tests::{TestDb, backends};
use uuid::Uuid;

const ORGS: [&str; 2] = ["org-a", "org-b"];

/// Everything written so far, as plain sets.
#[derive(Default)]
struct Model {
    users: Vec<(String, usize)>,
    groups: Vec<(Uuid, usize, BTreeSet<String>)>,
}

#[derive(Clone, Debug)]
struct Additions {
    users: Vec<usize>,
    groups: Vec<(usize, Vec<usize>)>,
}

#[derive(Clone, Debug)]
struct Query {
    org: Option<usize>,
    user_ids: Vec<usize>,
    groups: Option<(bool, Vec<usize>)>,
    all_users: bool,
    excluded: Vec<usize>,
}

fn additions() -> impl Strategy<Value = Additions> {
    (
        prop::collection::vec(0..ORGS.len(), 1..6),
        prop::collection::vec(
            (0..ORGS.len(), prop::collection::vec(0usize..64, 0..8)),
            0..3,
        ),
    )
        .prop_map(|(users, groups)| Additions { users, groups })
}

fn query() -> impl Strategy<Value = Query> {
    (
        prop::option::of(0..ORGS.len()),
        prop::collection::vec(0usize..64, 0..5),
        prop::option::of((any::<bool>(), prop::collection::vec(0usize..64, 1..4))),
        prop::bool::weighted(0.2),
        prop::collection::vec(0usize..64, 0..4),
    )
        .prop_map(|(org, user_ids, groups, all_users, excluded)| Query {
            org,
            user_ids,
            groups,
            all_users,
            excluded,
        })
}

fn id(s: &str) -> ExternalId {
    ExternalId::parse("id", s).unwrap()
}

async fn apply(db: &Db, model: &mut Model, add: &Additions) {
    let mut new_users = Vec::new();
    for org in &add.users {
        let name = format!("u{}", model.users.len());
        db.create_user(NewUser {
            id: id(&name),
            organization_id: id(ORGS[*org]),
            email: None,
            name: name.clone(),
            password_hash: None,
            role: Role::User,
        })
        .await
        .unwrap();
        model.users.push((name.clone(), *org));
        new_users.push(name);
    }
    for (org, picks) in &add.groups {
        // Members come from the group's organization, as the API requires.
        let candidates: Vec<&String> = model
            .users
            .iter()
            .filter(|(_, o)| o == org)
            .map(|(n, _)| n)
            .collect();
        let members: BTreeSet<String> = if candidates.is_empty() {
            BTreeSet::new()
        } else {
            picks
                .iter()
                .map(|p| candidates[p % candidates.len()].clone())
                .collect()
        };
        let ids: Vec<ExternalId> = members.iter().map(|m| id(m)).collect();
        let name = format!("g{}", model.groups.len());
        let group = db.create_group(&id(ORGS[*org]), &name, &ids).await.unwrap();
        model.groups.push((group.id, *org, members));
    }
}

fn expected(model: &Model, q: &Query) -> Vec<String> {
    let pick = |i: &usize| model.users[i % model.users.len()].0.clone();
    let mut set: BTreeSet<String> = q.user_ids.iter().map(pick).collect();
    if let Some((and, picks)) = q.groups.as_ref().filter(|_| !model.groups.is_empty()) {
        let chosen: BTreeSet<usize> = picks.iter().map(|p| p % model.groups.len()).collect();
        let mut sets = chosen.iter().map(|g| model.groups[*g].2.clone());
        let first = sets.next().unwrap_or_default();
        let combined = sets.fold(first, |acc, s| {
            if *and {
                acc.intersection(&s).cloned().collect()
            } else {
                acc.union(&s).cloned().collect()
            }
        });
        set.extend(combined);
    }
    if q.all_users {
        set.extend(model.users.iter().map(|(n, _)| n.clone()));
    }
    for e in q.excluded.iter().map(pick) {
        set.remove(&e);
    }
    if let Some(org) = q.org {
        set.retain(|n| model.users.iter().any(|(u, o)| u == n && *o == org));
    }
    set.into_iter().collect()
}

fn recipients(model: &Model, q: &Query) -> Recipients {
    let pick = |i: &usize| id(&model.users[i % model.users.len()].0);
    let groups = q
        .groups
        .as_ref()
        .filter(|_| !model.groups.is_empty())
        .map(|(and, picks)| {
            let mut ids: Vec<Uuid> = picks
                .iter()
                .map(|p| model.groups[p % model.groups.len()].0)
                .collect();
            ids.sort();
            ids.dedup();
            (
                if *and {
                    GroupOperator::And
                } else {
                    GroupOperator::Or
                },
                ids,
            )
        });
    let mut user_ids: Vec<ExternalId> = q.user_ids.iter().map(pick).collect();
    user_ids.sort();
    user_ids.dedup();
    Recipients {
        organization: q.org.map(|o| id(ORGS[o])),
        user_ids,
        groups,
        all_users: q.all_users,
        excluded: q.excluded.iter().map(pick).collect(),
    }
}

#[test]
fn resolved_recipients_match_a_set_computation() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for backend in backends() {
        let Some(test_db) = rt.block_on(TestDb::create(&backend)) else {
            continue;
        };
        let db = rt.block_on(Db::connect_and_migrate(&test_db.url)).unwrap();
        for org in ORGS {
            rt.block_on(db.create_organization(&id(org), org)).unwrap();
        }
        let model = std::cell::RefCell::new(Model::default());
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(
            &(additions(), prop::collection::vec(query(), 1..6)),
            |(add, queries)| {
                let mut model = model.borrow_mut();
                rt.block_on(apply(&db, &mut model, &add));
                for q in &queries {
                    let got: Vec<String> = rt
                        .block_on(db.resolve_recipients(&recipients(&model, q)))
                        .unwrap()
                        .into_iter()
                        .map(ExternalId::into_string)
                        .collect();
                    prop_assert_eq!(
                        got,
                        expected(&model, q),
                        "query {:?} on {}",
                        q,
                        backend.name()
                    );
                }
                Ok(())
            },
        );
        rt.block_on(async {
            let _ = db.close().await;
            test_db.drop_now().await;
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}
