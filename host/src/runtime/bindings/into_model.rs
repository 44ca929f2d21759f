//! Records as plugins emit them (the latest contract's types) into the hub's own model
//! (`crate::model`): fields move, nothing is copied.

use super::latest::healthforce::hub::types as wit;
use crate::model;

impl From<wit::Gender> for model::Gender {
    fn from(g: wit::Gender) -> Self {
        match g {
            wit::Gender::Male => Self::Male,
            wit::Gender::Female => Self::Female,
            wit::Gender::Unknown => Self::Unknown,
        }
    }
}

impl From<wit::SourceRef> for model::SourceRef {
    fn from(s: wit::SourceRef) -> Self {
        Self {
            system: s.system,
            id: s.id,
            updated_at: s.updated_at,
        }
    }
}

impl From<wit::Registration> for model::Registration {
    fn from(r: wit::Registration) -> Self {
        Self {
            kind: r.kind,
            number: r.number,
            status: r.status,
            issuer: r.issuer,
            valid_from: r.valid_from,
            valid_until: r.valid_until,
        }
    }
}

impl From<wit::Training> for model::Training {
    fn from(t: wit::Training) -> Self {
        Self {
            name: t.name,
            provider: t.provider,
            completed_on: t.completed_on,
            hours: t.hours,
        }
    }
}

impl From<wit::Employment> for model::Employment {
    fn from(e: wit::Employment) -> Self {
        Self {
            facility_code: e.facility_code,
            facility_name: e.facility_name,
            position: e.position,
            start_date: e.start_date,
            end_date: e.end_date,
        }
    }
}

impl From<wit::Education> for model::Education {
    fn from(e: wit::Education) -> Self {
        Self {
            institution: e.institution,
            degree: e.degree,
            major: e.major,
            graduated_on: e.graduated_on,
        }
    }
}

fn all<T, U: From<T>>(items: Vec<T>) -> Vec<U> {
    items.into_iter().map(U::from).collect()
}

impl From<wit::Practitioner> for model::Practitioner {
    fn from(p: wit::Practitioner) -> Self {
        Self {
            nik: p.nik,
            str_number: p.str_number,
            full_name: p.full_name,
            birth_place: p.birth_place,
            birth_date: p.birth_date,
            gender: p.gender.into(),
            profession: p.profession,
            phone: p.phone,
            email: p.email,
            registrations: all(p.registrations),
            trainings: all(p.trainings),
            employments: all(p.employments),
            educations: all(p.educations),
            source: p.source.into(),
        }
    }
}

impl From<wit::ObservationComponent> for model::ObservationComponent {
    fn from(c: wit::ObservationComponent) -> Self {
        Self {
            code: c.code,
            value: c.value,
            unit: c.unit,
        }
    }
}

impl From<wit::Observation> for model::Observation {
    fn from(o: wit::Observation) -> Self {
        Self {
            device_id: o.device_id,
            subject: o.subject,
            code: o.code,
            value: o.value,
            unit: o.unit,
            components: all(o.components),
            effective_at: o.effective_at,
            source: o.source.into(),
        }
    }
}

impl From<wit::Account> for model::Account {
    fn from(a: wit::Account) -> Self {
        Self {
            subject: a.subject,
            username: a.username,
            email: a.email,
            nik: a.nik,
            roles: a.roles,
            active: a.active,
            source: a.source.into(),
        }
    }
}

impl From<wit::CanonicalRecord> for model::CanonicalRecord {
    fn from(r: wit::CanonicalRecord) -> Self {
        match r {
            wit::CanonicalRecord::Practitioner(p) => Self::Practitioner(p.into()),
            wit::CanonicalRecord::Observation(o) => Self::Observation(o.into()),
            wit::CanonicalRecord::Account(a) => Self::Account(a.into()),
        }
    }
}
