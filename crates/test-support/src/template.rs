//! `deploy/template.yaml`, read as CloudFormation would read it for given parameter values: the
//! few intrinsics the template uses (`Ref`, `Fn::Sub`, `Fn::If`, `Fn::GetAtt`, `Fn::Select`,
//! `Fn::Split` and the condition functions) evaluated, `AWS::NoValue` dropped. Enough to render
//! the function's role policy and environment for a test; anything else is a test failure, so
//! the template cannot grow an intrinsic these tests silently misread.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-2";
pub const STACK: &str = "wdiv-s3-trigger";

pub struct Template {
    pub doc: Value,
}

impl Template {
    /// The repository's template, parsed with a plain YAML parser (no CloudFormation tags).
    pub fn load() -> Template {
        let path = crate::world::repo_root().join("deploy/template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let doc: Value = yaml_serde::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{} is not plain YAML (use Fn::Sub, not !Sub): {e}",
                path.display()
            )
        });
        Template { doc }
    }

    pub fn parameters(&self) -> &Map<String, Value> {
        self.doc["Parameters"]
            .as_object()
            .expect("the template has Parameters")
    }

    pub fn resource(&self, name: &str) -> &Value {
        let r = &self.doc["Resources"][name];
        assert!(r.is_object(), "the template has no resource {name}");
        r
    }

    /// The template for these parameter values (the others at their defaults).
    pub fn with(&self, overrides: &[(&str, &str)]) -> Rendered<'_> {
        let mut params: BTreeMap<String, String> = self
            .parameters()
            .iter()
            .map(|(name, p)| {
                let default = match &p["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => String::new(),
                    other => panic!("parameter {name}: a default of {other}"),
                };
                (name.clone(), default)
            })
            .collect();
        for (name, value) in overrides {
            assert!(
                params.contains_key(*name),
                "the template has no parameter {name}"
            );
            params.insert((*name).to_owned(), (*value).to_owned());
        }
        Rendered {
            template: self,
            params,
        }
    }
}

pub struct Rendered<'a> {
    template: &'a Template,
    pub params: BTreeMap<String, String>,
}

impl Rendered<'_> {
    /// Evaluates a value of the template; `None` is `AWS::NoValue`.
    pub fn eval(&self, v: &Value) -> Option<Value> {
        match v {
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|i| self.eval(i)).collect(),
            )),
            Value::Object(map) if map.len() == 1 => {
                let (k, arg) = map.iter().next().unwrap();
                match k.as_str() {
                    "Ref" => self.reference(arg.as_str().expect("Ref names a string")),
                    "Fn::Sub" => Some(Value::String(self.sub(arg))),
                    "Fn::If" => {
                        let a = arg.as_array().expect("Fn::If takes a list");
                        let branch = if self.condition(a[0].as_str().unwrap()) {
                            &a[1]
                        } else {
                            &a[2]
                        };
                        self.eval(branch)
                    }
                    "Fn::GetAtt" => {
                        let a = arg.as_array().expect("Fn::GetAtt takes a list");
                        Some(Value::String(get_att(
                            a[0].as_str().unwrap(),
                            a[1].as_str().unwrap(),
                        )))
                    }
                    "Fn::Select" => {
                        let a = arg.as_array().expect("Fn::Select takes a list");
                        let i = a[0].as_u64().expect("Fn::Select's index") as usize;
                        let list = self.eval(&a[1]).unwrap();
                        Some(list[i].clone())
                    }
                    "Fn::Split" => {
                        let a = arg.as_array().expect("Fn::Split takes a list");
                        let sep = a[0].as_str().unwrap();
                        let s = self.eval(&a[1]).unwrap();
                        let parts = s.as_str().unwrap().split(sep).map(json_str);
                        Some(Value::Array(parts.collect()))
                    }
                    other if other.starts_with("Fn::") => {
                        panic!("template.rs: {other} is not evaluated here; add it")
                    }
                    _ => Some(self.object(map)),
                }
            }
            Value::Object(map) => Some(self.object(map)),
            other => Some(other.clone()),
        }
    }

    fn object(&self, map: &Map<String, Value>) -> Value {
        Value::Object(
            map.iter()
                .filter_map(|(k, v)| self.eval(v).map(|v| (k.clone(), v)))
                .collect(),
        )
    }

    fn reference(&self, name: &str) -> Option<Value> {
        if name == "AWS::NoValue" {
            return None;
        }
        Some(Value::String(self.name(name)))
    }

    /// A parameter's value, a pseudo parameter, or a resource's `Ref`.
    fn name(&self, name: &str) -> String {
        if let Some(v) = self.params.get(name) {
            return v.clone();
        }
        match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => REGION.into(),
            "AWS::AccountId" => ACCOUNT.into(),
            "AWS::StackName" => STACK.into(),
            "LogGroup" => format!("/aws/lambda/{STACK}"),
            // SAM's `Ref: Function.Alias`: the ARN of the alias `AutoPublishAlias` makes.
            alias if alias.ends_with(".Alias") => {
                let function = alias.trim_end_matches(".Alias");
                let name = self.template.resource(function)["Properties"]["AutoPublishAlias"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{alias}: {function} has no AutoPublishAlias"))
                    .to_owned();
                format!("{}:{name}", get_att(function, "Arn"))
            }
            resource => {
                self.template.resource(resource);
                format!("{STACK}-{resource}")
            }
        }
    }

    fn sub(&self, arg: &Value) -> String {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(a) => (
                a[0].as_str().unwrap(),
                a[1].as_object().expect("Fn::Sub's variables").clone(),
            ),
            other => panic!("Fn::Sub of {other}"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("a closed ${...}") + start;
            let var = &rest[start + 2..end];
            let value = match vars.get(var) {
                Some(v) => self.eval(v).unwrap().as_str().unwrap().to_owned(),
                None => match var.split_once('.') {
                    Some((resource, attr)) => get_att(resource, attr),
                    None => self.name(var),
                },
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A condition of the template, evaluated for these parameters.
    pub fn condition(&self, name: &str) -> bool {
        let c = &self.template.doc["Conditions"][name];
        assert!(!c.is_null(), "the template has no condition {name}");
        self.cond(c)
    }

    fn cond(&self, c: &Value) -> bool {
        let map = c.as_object().expect("a condition is an object");
        let (k, arg) = map.iter().next().unwrap();
        let list = || arg.as_array().expect("a condition function takes a list");
        match k.as_str() {
            "Condition" => self.condition(arg.as_str().unwrap()),
            "Fn::Not" => !self.cond(&list()[0]),
            "Fn::Or" => list().iter().any(|c| self.cond(c)),
            "Fn::And" => list().iter().all(|c| self.cond(c)),
            "Fn::Equals" => self.eval(&list()[0]) == self.eval(&list()[1]),
            other => panic!("condition function {other}"),
        }
    }

    /// The function's role policy, as IAM would receive it.
    pub fn role_policy(&self) -> Value {
        let policies = &self.template.resource("FunctionRole")["Properties"]["Policies"];
        let policies = policies.as_array().expect("FunctionRole has Policies");
        assert_eq!(policies.len(), 1, "one inline policy on the role");
        self.eval(&policies[0]["PolicyDocument"]).unwrap()
    }

    /// The function's environment, as Lambda would set it.
    pub fn environment(&self) -> Map<String, Value> {
        let vars = &self.template.resource("Function")["Properties"]["Environment"]["Variables"];
        self.eval(vars).unwrap().as_object().unwrap().clone()
    }
}

fn json_str(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// `Fn::GetAtt`: an ARN of the right service for the resources the policy names.
fn get_att(resource: &str, attr: &str) -> String {
    match (resource, attr) {
        ("FailedEvents", "Arn") => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-FailedEvents"),
        ("FailedEvents", "QueueName") => format!("{STACK}-FailedEvents"),
        ("Function", "Arn") => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}"),
        (r, a) => format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:{r}/{a}"),
    }
}

/// The policy's statements, by Sid.
pub fn statements(policy: &Value) -> Vec<Value> {
    policy["Statement"]
        .as_array()
        .expect("the policy has a Statement list")
        .clone()
}

pub fn sid(statement: &Value) -> &str {
    statement["Sid"].as_str().unwrap_or("(no Sid)")
}

/// A statement's actions, as a list.
pub fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("Action {other}"),
    }
}

/// A statement's resources, as a list.
pub fn resources(statement: &Value) -> Vec<String> {
    match &statement["Resource"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("Resource {other}"),
    }
}
