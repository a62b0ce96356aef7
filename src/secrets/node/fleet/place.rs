//! Where this process's node stands in its job: the node's rank among the
//! job's nodes and their count, as the scheduler that started it says; the
//! fleet's settings that hold it.
//!
//! Each scheduler's variables are read (`SIMPLETUNER_FLEET_RANK` and
//! `SIMPLETUNER_FLEET_NODES`, each when set, instead of theirs); two that
//! disagree, a value that is not a whole number, and a rank at or past the
//! node count are refused with a message naming the variables.

use crate::error::Error;
use crate::secrets::transport::gate::Place;
use crate::secrets::transport::vars::{self as var, Vars};

/// The largest rank or node count taken (a million nodes).
const MAX_NODES: u32 = 1_000_000;

/// One number a scheduler says, and the variables it was read from.
#[derive(Clone, Debug)]
struct Said {
    value: u32,
    from: String,
}

/// What one scheduler says: the node's rank and the node count.
#[derive(Default)]
struct Told {
    rank: Option<Said>,
    nodes: Option<Said>,
}

/// The whole number in `name`, if set: a rank (from 0) or a count (from 1).
fn number(vars: &Vars, name: &str, least: u32) -> Result<Option<u32>, Error> {
    let Some(text) = vars.get(name) else {
        return Ok(None);
    };
    let what = if least == 0 {
        "a node rank: a whole number from 0"
    } else {
        "a count: a whole number from 1"
    };
    match text.trim().parse::<u32>() {
        Ok(n) if (least..=MAX_NODES).contains(&n) => Ok(Some(n)),
        _ => Err(Error::InvalidArgument(format!(
            "{name} is '{}', not {what} to {MAX_NODES}",
            crate::error::shorten(text)
        ))),
    }
}

/// A scheduler that gives the node's rank and the node count in two
/// variables of its own.
fn pair(vars: &Vars, rank: &str, nodes: &str) -> Result<Told, Error> {
    Ok(Told {
        rank: number(vars, rank, 0)?.map(|value| Said {
            value,
            from: rank.to_owned(),
        }),
        nodes: number(vars, nodes, 1)?.map(|value| Said {
            value,
            from: nodes.to_owned(),
        }),
    })
}

/// An MPI launcher: the process's rank, the processes per node and in all;
/// with ranks laid out node by node (the launchers' default), the node's
/// rank is the process's divided by the processes per node.
fn mpi(vars: &Vars, rank: &str, local: &str, size: &str) -> Result<Told, Error> {
    let (Some(r), Some(per_node)) = (number(vars, rank, 0)?, number(vars, local, 1)?) else {
        return Ok(Told::default());
    };
    let nodes = number(vars, size, 1)?.map(|all| Said {
        value: all.div_ceil(per_node),
        from: format!("{size} / {local}"),
    });
    Ok(Told {
        rank: Some(Said {
            value: r / per_node,
            from: format!("{rank} / {local}"),
        }),
        nodes,
    })
}

/// What each scheduler's variables say, in the order they are preferred.
fn schedulers(vars: &Vars) -> Result<Vec<Told>, Error> {
    Ok(vec![
        pair(vars, var::SLURM_NODEID, var::SLURM_NNODES)?,
        pair(vars, var::GROUP_RANK, var::GROUP_WORLD_SIZE)?,
        pair(vars, var::NODE_RANK, var::NNODES)?,
        pair(vars, var::PET_NODE_RANK, var::PET_NNODES)?,
        pair(vars, var::SKYPILOT_NODE_RANK, var::SKYPILOT_NUM_NODES)?,
        Told {
            rank: number(vars, var::JOB_COMPLETION_INDEX, 0)?.map(|value| Said {
                value,
                from: var::JOB_COMPLETION_INDEX.to_owned(),
            }),
            nodes: None,
        },
        mpi(
            vars,
            var::OMPI_COMM_WORLD_RANK,
            var::OMPI_COMM_WORLD_LOCAL_SIZE,
            var::OMPI_COMM_WORLD_SIZE,
        )?,
        mpi(vars, var::PMI_RANK, var::MPI_LOCALNRANKS, var::PMI_SIZE)?,
    ])
}

/// The first of `said`, refused when another says a different number.
fn agreed(said: Vec<Said>, what: &str) -> Result<Option<Said>, Error> {
    let mut all = said.into_iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    for other in all {
        if other.value != first.value {
            return Err(Error::InvalidArgument(format!(
                "the schedulers' variables disagree on the {what}: {} says {}, {} says {}; \
                 set {} and {} to the node's own",
                first.from,
                first.value,
                other.from,
                other.value,
                var::SIMPLETUNER_FLEET_RANK,
                var::SIMPLETUNER_FLEET_NODES
            )));
        }
    }
    Ok(Some(first))
}

/// The node's place as `vars` say it; `None` when no scheduler says
/// anything (a process on its own).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the variables: a value that is not
/// a whole number, schedulers that disagree, a rank at or past the node
/// count.
pub(crate) fn read(vars: &Vars) -> Result<Option<Place>, Error> {
    let own = pair(
        vars,
        var::SIMPLETUNER_FLEET_RANK,
        var::SIMPLETUNER_FLEET_NODES,
    )?;
    let (ranks, counts): (Vec<_>, Vec<_>) = schedulers(vars)?
        .into_iter()
        .map(|t| (t.rank, t.nodes))
        .unzip();
    // The node's own variables, each where set, instead of the
    // schedulers'.
    let rank = match own.rank {
        Some(r) => Some(r),
        None => agreed(ranks.into_iter().flatten().collect(), "node's rank")?,
    };
    let nodes = match own.nodes {
        Some(n) => Some(n),
        None => agreed(counts.into_iter().flatten().collect(), "node count")?,
    };
    if let (Some(r), Some(n)) = (&rank, &nodes) {
        if r.value >= n.value {
            return Err(Error::InvalidArgument(format!(
                "{} says node {} but {} says {} nodes: a node's rank is below the \
                 node count (ranks count from 0)",
                r.from, r.value, n.from, n.value
            )));
        }
    }
    let from: Vec<&str> = [&rank, &nodes]
        .into_iter()
        .flatten()
        .map(|s| s.from.as_str())
        .collect();
    Ok((!from.is_empty()).then(|| Place {
        from: from.join(", "),
        rank: rank.as_ref().map(|s| s.value),
        nodes: nodes.as_ref().map(|s| s.value),
    }))
}
