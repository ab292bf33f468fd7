//! The twin's state: named collections of JSON objects with CRUD semantics.

use crate::def::{CollectionDef, IdStrategy};
use rand::Rng;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// All collections of one twin, by name. Cloning is a fork; assigning back is a restore.
///
/// Invariant: every object in a collection is a JSON object whose id field is set and unique
/// within the collection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    collections: BTreeMap<String, Collection>,
}

#[derive(Debug, Clone, PartialEq)]
struct Collection {
    def: CollectionDef,
    items: Vec<Value>,
    next_seq: u64,
}

impl State {
    /// The state a definition starts from (seeded objects, ids assigned where missing).
    pub fn seeded(defs: &BTreeMap<String, CollectionDef>, rng: &mut impl Rng) -> Self {
        let mut s = State::default();
        for (name, def) in defs {
            s.collections.insert(
                name.clone(),
                Collection {
                    def: def.clone(),
                    items: Vec::new(),
                    next_seq: 1,
                },
            );
            for obj in &def.seed {
                let _ = s.insert(name, obj.clone(), rng);
            }
        }
        s
    }

    /// Whole state as JSON: `{collection: [objects...]}`.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.collections
                .iter()
                .map(|(k, c)| (k.clone(), Value::Array(c.items.clone())))
                .collect(),
        )
    }

    /// Replaces the objects of every collection named in `json` (an object of arrays).
    /// Collections not declared in the definition are created with sequence ids.
    ///
    /// # Errors
    /// A message when `json` is not an object of arrays of objects.
    pub fn replace_from_json(&mut self, json: &Value, rng: &mut impl Rng) -> Result<(), String> {
        let obj = json
            .as_object()
            .ok_or("state must be a JSON object of collections")?;
        for (name, items) in obj {
            let items = items
                .as_array()
                .ok_or_else(|| format!("collection `{name}` must be an array"))?;
            let c = self.collection_mut(name);
            c.items.clear();
            c.next_seq = 1;
            for it in items {
                if !it.is_object() {
                    return Err(format!("collection `{name}` holds a non-object"));
                }
                self.insert(name, it.clone(), rng)?;
            }
        }
        Ok(())
    }

    fn collection_mut(&mut self, name: &str) -> &mut Collection {
        self.collections
            .entry(name.to_string())
            .or_insert_with(|| Collection {
                def: CollectionDef {
                    id_field: "id".into(),
                    id: IdStrategy::Sequence,
                    seed: Vec::new(),
                },
                items: Vec::new(),
                next_seq: 1,
            })
    }

    /// Objects of a collection in insertion order (empty when unknown).
    pub fn items(&self, collection: &str) -> &[Value] {
        self.collections
            .get(collection)
            .map_or(&[][..], |c| c.items.as_slice())
    }

    /// Inserts an object, assigning an id when its id field is absent. Returns the stored object.
    ///
    /// # Errors
    /// A message when `obj` is not an object or its id is already taken.
    pub fn insert(
        &mut self,
        collection: &str,
        obj: Value,
        rng: &mut impl Rng,
    ) -> Result<Value, String> {
        let Value::Object(mut map) = obj else {
            return Err("only JSON objects can be stored".into());
        };
        let c = self.collection_mut(collection);
        let field = c.def.id_field.clone();
        if map.get(&field).is_none_or(Value::is_null) {
            let id = match &c.def.id {
                IdStrategy::Sequence => Value::from(c.next_seq),
                IdStrategy::Prefixed { prefix, len } => {
                    Value::String(format!("{prefix}{}", random_upper(rng, *len)))
                }
                IdStrategy::Uuid => Value::String(uuid_v4(rng)),
            };
            map.insert(field.clone(), id);
        }
        let id = map.get(&field).cloned().unwrap_or(Value::Null);
        if c.items.iter().any(|o| o.get(&field) == Some(&id)) {
            return Err(format!("id {id} already exists in `{collection}`"));
        }
        if let Some(n) = id.as_u64() {
            c.next_seq = c.next_seq.max(n + 1);
        }
        let v = Value::Object(map);
        c.items.push(v.clone());
        Ok(v)
    }

    /// Index of the first object whose fields equal `filter` (string/number loosely equal).
    pub fn find(&self, collection: &str, filter: &Map<String, Value>) -> Option<usize> {
        self.items(collection)
            .iter()
            .position(|o| matches_filter(o, filter))
    }

    /// All objects matching `filter`, in insertion order.
    pub fn filter(&self, collection: &str, filter: &Map<String, Value>) -> Vec<Value> {
        self.items(collection)
            .iter()
            .filter(|o| matches_filter(o, filter))
            .cloned()
            .collect()
    }

    /// Object at `index` of `collection`.
    pub fn get(&self, collection: &str, index: usize) -> Option<&Value> {
        self.items(collection).get(index)
    }

    /// Applies an RFC 7396 merge patch to the object at `index`; the id cannot change.
    pub fn patch(&mut self, collection: &str, index: usize, patch: &Value) -> Option<Value> {
        let c = self.collections.get_mut(collection)?;
        let field = c.def.id_field.clone();
        let obj = c.items.get_mut(index)?;
        let id = obj.get(&field).cloned();
        merge_patch(obj, patch);
        if let (Some(id), Value::Object(m)) = (id, &mut *obj) {
            m.insert(field, id);
        }
        Some(obj.clone())
    }

    /// Removes and returns the object at `index`.
    pub fn remove(&mut self, collection: &str, index: usize) -> Option<Value> {
        let c = self.collections.get_mut(collection)?;
        (index < c.items.len()).then(|| c.items.remove(index))
    }
}

/// True when every filter field equals the object's (numbers and their decimal text match).
///
/// An array on either side means "any of": a filter value `["*", "ada"]` matches a field
/// `["ada", "bob"]` (used for visibility lists such as GitHub's private repositories).
pub fn matches_filter(obj: &Value, filter: &Map<String, Value>) -> bool {
    filter
        .iter()
        .all(|(k, want)| crate::template::lookup(obj, k).is_some_and(|have| loose_eq(have, want)))
}

fn loose_eq(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (h, w) if h == w => true,
        (_, Value::Array(ws)) => ws.iter().any(|w| !w.is_array() && loose_eq(have, w)),
        (Value::Array(hs), w) => hs.iter().any(|h| !h.is_array() && loose_eq(h, w)),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            n.to_string() == *s
        }
        (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
            b.to_string() == *s
        }
        _ => false,
    }
}

/// RFC 7396 JSON Merge Patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

/// Strong `ETag` (RFC 9110 §8.8.3) of a JSON value: quoted hex of the first 8 bytes of its SHA-256.
pub fn etag(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    format!("\"{}\"", hex::encode(&digest[..8]))
}

/// `len` characters from `[0-9A-Z]`.
pub fn random_upper(rng: &mut impl Rng, len: usize) -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// An RFC 4122 version-4 UUID from `rng`.
pub fn uuid_v4(rng: &mut impl Rng) -> String {
    let mut b: [u8; 16] = rng.r#gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    #[test]
    fn crud_round_trip() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut defs = BTreeMap::new();
        defs.insert(
            "issues".to_string(),
            CollectionDef {
                id_field: "number".into(),
                id: IdStrategy::Sequence,
                seed: vec![json!({"number": 7, "title": "old"})],
            },
        );
        let mut s = State::seeded(&defs, &mut rng);
        let new = s
            .insert("issues", json!({"title": "new"}), &mut rng)
            .unwrap();
        assert_eq!(new["number"], 8);
        let f = json!({"number": "8"});
        let i = s.find("issues", f.as_object().unwrap()).unwrap();
        let patched = s
            .patch(
                "issues",
                i,
                &json!({"title": null, "state": "closed", "number": 99}),
            )
            .unwrap();
        assert_eq!(patched, json!({"number": 8, "state": "closed"}));
        assert!(s.insert("issues", json!({"number": 8}), &mut rng).is_err());
        assert_eq!(s.remove("issues", i).unwrap()["number"], 8);
        assert_eq!(s.items("issues").len(), 1);
    }

    #[test]
    fn ids_are_deterministic_for_a_seed() {
        let mk = || {
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            (random_upper(&mut rng, 8), uuid_v4(&mut rng))
        };
        assert_eq!(mk(), mk());
        assert_eq!(mk().1.len(), 36);
    }

    proptest! {
        #[test]
        fn merge_patch_with_itself_is_identity(v in proptest::collection::btree_map("[a-c]", 0i64..5, 0..4)) {
            let obj = json!(v);
            let mut t = obj.clone();
            merge_patch(&mut t, &obj);
            prop_assert_eq!(t, obj);
        }

        #[test]
        fn snapshot_restore_round_trips(titles in proptest::collection::vec("[a-z]{0,6}", 0..8)) {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let mut s = State::default();
            for t in &titles { s.insert("x", json!({"t": t}), &mut rng).unwrap(); }
            let snap = s.to_json();
            let mut r = State::default();
            r.replace_from_json(&snap, &mut rng).unwrap();
            prop_assert_eq!(r.to_json(), snap);
        }
    }
}
