"""``describe_graph``: a candidate on one line, for tables and CSV files."""

import networkx as nx

from autometa.graph import INPUT, OUTPUT, describe_graph, mlp_graph


def test_a_chain_reads_left_to_right():
    graph = mlp_graph((64, 128), hyperparameters={"fast_lr": 0.1, "inner_steps": 2})
    graph.nodes["l1"]["op"], graph.nodes["l1"]["residual"] = "linear_relu", True
    assert describe_graph(graph) == "in>l0:tanh64>l1:relu128(+res)>out | fast_lr=0.1 inner_steps=2"


def test_a_dag_lists_nodes_with_inputs_in_edge_order_and_merges():
    graph = nx.DiGraph(hyperparameters={"fast_lr": 0.123456})
    graph.add_node(INPUT, op=INPUT)
    graph.add_node("n0", op="linear_elu", width=128, merge="sum", residual=False)
    graph.add_node("n1", op="linear_silu", width=64, merge="concat", residual=False)
    graph.add_node("n2", op="identity", merge="sum", residual=True)
    graph.add_node(OUTPUT, op=OUTPUT, merge="sum")
    graph.add_edge(INPUT, "n0", order=0)
    graph.add_edge("n0", "n1", order=1)
    graph.add_edge(INPUT, "n1", order=0)
    graph.add_edge("n1", "n2", order=0)
    graph.add_edge("n2", OUTPUT, order=0)
    graph.add_edge("n0", OUTPUT, order=1)
    assert describe_graph(graph) == (
        "n0:elu128<in; n1:silu64<in,n0[cat]; n2:identity(+res)<n1; out<n2,n0[sum] | fast_lr=0.1235"
    )


def test_cut_to_a_length_with_an_ellipsis():
    graph = mlp_graph((64,) * 20)
    whole = describe_graph(graph)
    assert len(whole) > 100 and whole.endswith(">l19:tanh64>out")
    cut = describe_graph(graph, max_chars=40)
    assert len(cut) == 40 and cut == whole[:39] + "…"
    assert describe_graph(graph, max_chars=len(whole)) == whole
